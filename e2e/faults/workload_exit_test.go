//go:build e2e

package faults_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kestrelnet/kestrel/e2e/framework"
)

var _ = Describe("a pod whose workload exits", func() {
	It("is reported not Ready and its endpoint leaves the agent", func(ctx SpecContext) {
		kube, err := cluster.Client()
		Expect(err).NotTo(HaveOccurred())
		pods := kube.CoreV1().Pods("default")
		pod, err := pods.Create(ctx, framework.WorkloadPod("default", "short-lived", "node-1", corev1.RestartPolicyNever,
			[]string{"/bin/sh", "-c", "sleep 3; exit 3"}), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			pods.Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
		})

		By("running first: Ready, with an endpoint on node-1")
		Eventually(ctx, func(g Gomega) {
			p, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(framework.PodReady(p)).To(BeTrue())
			st, err := cluster.AgentStatus(ctx, "node-1")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(st.Endpoints).To(ContainElement(HaveField("Pod", "default/short-lived")))
		}).WithTimeout(20 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())

		By("after the exit: Failed, not Ready, exit code 3, no endpoint, no sandbox")
		Eventually(ctx, func(g Gomega) {
			p, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(p.Status.Phase).To(Equal(corev1.PodFailed))
			g.Expect(framework.PodReady(p)).To(BeFalse())
			g.Expect(p.Status.ContainerStatuses).To(ConsistOf(HaveField("State.Terminated.ExitCode", BeEquivalentTo(3))))
			st, err := cluster.AgentStatus(ctx, "node-1")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(st.Endpoints).NotTo(ContainElement(HaveField("Pod", "default/short-lived")))
			g.Expect(cluster.PodSandboxExists(p)).To(BeFalse())
		}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	}, NodeTimeout(time.Minute))

	It("with restartPolicy Always is restarted, and not Ready while it is down", func(ctx SpecContext) {
		kube, err := cluster.Client()
		Expect(err).NotTo(HaveOccurred())
		pods := kube.CoreV1().Pods("default")
		pod, err := pods.Create(ctx, framework.WorkloadPod("default", "crashing", "node-2", corev1.RestartPolicyAlways,
			[]string{"/bin/sh", "-c", "sleep 1; exit 1"}), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			pods.Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
		})
		sawNotReady := false
		Eventually(ctx, func(g Gomega) {
			p, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			if len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount > 0 && !framework.PodReady(p) {
				sawNotReady = true
			}
			g.Expect(sawNotReady).To(BeTrue(), "status: %+v", p.Status)
			g.Expect(p.Status.Phase).To(Equal(corev1.PodRunning))
		}).WithTimeout(40 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	}, NodeTimeout(time.Minute))
})
