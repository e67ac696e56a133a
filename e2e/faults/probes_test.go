//go:build e2e

package faults_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/kestrelnet/kestrel/e2e/framework"
)

// createPod creates pod and deletes it when the spec ends.
func createPod(ctx SpecContext, kube kubernetes.Interface, pod *corev1.Pod) {
	pods := kube.CoreV1().Pods(pod.Namespace)
	_, err := pods.Create(ctx, pod, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) {
		pods.Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
	})
}

func getPod(ctx SpecContext, g Gomega, kube kubernetes.Interface, name string) *corev1.Pod {
	p, err := kube.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	return p
}

func hasEvent(ctx SpecContext, g Gomega, kube kubernetes.Interface, pod, reason, text string) {
	evs, err := kube.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(evs.Items).To(ContainElement(And(
		HaveField("InvolvedObject.Name", pod), HaveField("Reason", reason), HaveField("Message", ContainSubstring(text)))))
}

var _ = Describe("container probes", func() {
	It("readiness comes from the readinessProbe, sent from the node, which default deny does not block", func(ctx SpecContext) {
		kube, err := cluster.Client()
		Expect(err).NotTo(HaveOccurred())
		pod := framework.WorkloadPod("default", "probed-web", "node-1", corev1.RestartPolicyAlways, nil)
		pod.Labels = map[string]string{"app": "probed-web"}
		pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}
		pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 1,
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}}}
		createPod(ctx, kube, pod)
		Eventually(ctx, func(g Gomega) {
			g.Expect(framework.PodReady(getPod(ctx, g, kube, pod.Name))).To(BeTrue())
		}).WithTimeout(20 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())

		By("denying all ingress to the pod: the kubelet's probes come from the host, which Cilium's allow-localhost lets through")
		deny := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "deny-probed-web", Namespace: "default"},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "probed-web"}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			},
		}
		_, err = kube.NetworkingV1().NetworkPolicies("default").Create(ctx, deny, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			kube.NetworkingV1().NetworkPolicies("default").Delete(ctx, deny.Name, metav1.DeleteOptions{})
		})
		Eventually(ctx, func(g Gomega) {
			st, err := cluster.AgentStatus(ctx, "node-1")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(st.Endpoints).To(ContainElement(And(HaveField("Pod", "default/probed-web"), HaveField("IngressEnforced", true))))
		}).WithTimeout(20 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
		// Three more probe periods: with failureThreshold 1, one refused probe would show.
		Consistently(ctx, func(g Gomega) {
			g.Expect(framework.PodReady(getPod(ctx, g, kube, pod.Name))).To(BeTrue())
		}).WithTimeout(3500 * time.Millisecond).WithPolling(250 * time.Millisecond).Should(Succeed())
	}, NodeTimeout(time.Minute))

	It("a failing readinessProbe keeps a running container not Ready, and says why", func(ctx SpecContext) {
		kube, err := cluster.Client()
		Expect(err).NotTo(HaveOccurred())
		pod := framework.WorkloadPod("default", "never-ready", "node-2", corev1.RestartPolicyAlways, nil, 8080)
		pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{PeriodSeconds: 1,
			ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9999)}}}
		createPod(ctx, kube, pod)
		Eventually(ctx, func(g Gomega) {
			p := getPod(ctx, g, kube, pod.Name)
			g.Expect(p.Status.Phase).To(Equal(corev1.PodRunning))
			g.Expect(p.Status.ContainerStatuses).To(ConsistOf(And(HaveField("Ready", false), HaveField("State.Running", Not(BeNil())))))
			g.Expect(framework.PodReady(p)).To(BeFalse())
			hasEvent(ctx, g, kube, pod.Name, "Unhealthy", "Readiness probe failed")
		}).WithTimeout(20 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	}, NodeTimeout(time.Minute))

	It("a failing livenessProbe restarts the container", func(ctx SpecContext) {
		kube, err := cluster.Client()
		Expect(err).NotTo(HaveOccurred())
		pod := framework.WorkloadPod("default", "unhealthy", "node-2", corev1.RestartPolicyAlways, nil, 8080)
		pod.Spec.Containers[0].LivenessProbe = &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 2,
			ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/sh", "-c", "exit 1"}}}}
		createPod(ctx, kube, pod)
		Eventually(ctx, func(g Gomega) {
			p := getPod(ctx, g, kube, pod.Name)
			g.Expect(p.Status.ContainerStatuses).To(ConsistOf(HaveField("RestartCount", BeNumerically(">=", 1))))
			hasEvent(ctx, g, kube, pod.Name, "Killing", "failed liveness probe")
		}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	}, NodeTimeout(time.Minute))
})
