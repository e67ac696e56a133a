//go:build e2e

package lifecycle_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kestrelnet/kestrel/e2e/framework"
	"github.com/kestrelnet/kestrel/sim/controlplane"
)

var _ = Describe("a cluster's life", Ordered, func() {
	var cluster framework.Cluster

	BeforeAll(func(ctx SpecContext) {
		cluster = framework.SetUpCluster(ctx, 3)
	}, NodeTimeout(framework.UpTimeout))

	It("answers kubectl get nodes,pods -A with three Ready nodes", func(ctx SpecContext) {
		kubectl := filepath.Join(controlplane.DefaultBinDir(), "kubectl")
		out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", cluster.Kubeconfig(), "get", "nodes,pods", "-A").CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		for _, n := range cluster.Nodes() {
			Expect(string(out)).To(MatchRegexp(`node/%s\s+Ready`, n))
		}
	})

	It("keeps a Lease per node in kube-node-lease, renewed within its duration", func(ctx SpecContext) {
		kube, err := cluster.Client()
		Expect(err).NotTo(HaveOccurred())
		leases, err := kube.CoordinationV1().Leases(corev1.NamespaceNodeLease).List(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(leases.Items).To(HaveLen(len(cluster.Nodes())))
		for _, l := range leases.Items {
			Expect(l.Spec.HolderIdentity).To(HaveValue(Equal(l.Name)))
			Expect(l.Spec.RenewTime).NotTo(BeNil())
			Expect(time.Since(l.Spec.RenewTime.Time)).To(BeNumerically("<", time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second))
		}
	})

	It("runs a pod to Ready and puts its endpoint in its node's agent", func(ctx SpecContext) {
		kube, err := cluster.Client()
		Expect(err).NotTo(HaveOccurred())
		_, err = kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "lifecycle"}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		_, err = kube.CoreV1().Pods("lifecycle").Create(ctx,
			framework.WorkloadPod("lifecycle", "web", "node-3", corev1.RestartPolicyAlways, nil, 80), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Eventually(ctx, func(g Gomega) {
			p, err := kube.CoreV1().Pods("lifecycle").Get(ctx, "web", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(p.Status.PodIP).NotTo(BeEmpty())
			g.Expect(framework.PodReady(p)).To(BeTrue())
			st, err := cluster.AgentStatus(ctx, "node-3")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(st.Endpoints).To(ContainElement(HaveField("Pod", "lifecycle/web")))
		}).WithTimeout(30 * time.Second).Should(Succeed())
	})

	It("keeps no scenario object, sync marker included, once a scenario runner closes", func(ctx SpecContext) {
		runner, err := cluster.Runner()
		Expect(err).NotTo(HaveOccurred())
		rep, err := framework.RunScenario(ctx, runner, framework.RepoPath("scenarios/library/connectivity/all-ingress-deny.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(rep.OK()).To(BeTrue(), framework.ReportText(rep))
		kube, err := cluster.Client()
		Expect(err).NotTo(HaveOccurred())
		ccnps := schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumclusterwidenetworkpolicies"}
		cfg, err := clientcmd.BuildConfigFromFlags("", cluster.Kubeconfig())
		Expect(err).NotTo(HaveOccurred())
		dyn, err := dynamic.NewForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())
		list, err := dyn.Resource(ccnps).List(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(list.Items).NotTo(BeEmpty(), "a runner that is still open keeps its sync marker, or this spec proves nothing")

		framework.CloseRunner(runner)
		Eventually(ctx, func(g Gomega) {
			nss, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			for _, ns := range nss.Items {
				g.Expect(ns.Annotations).NotTo(HaveKey("kestrel.dev/scenario-managed"), "namespace %s", ns.Name)
			}
			list, err := dyn.Resource(ccnps).List(ctx, metav1.ListOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(list.Items).To(BeEmpty())
		}).WithTimeout(30 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
	}, NodeTimeout(2*time.Minute))

	It("leaves nothing behind when taken down, and taking it down again is a no-op", func(ctx SpecContext) {
		before, err := cluster.Leftovers()
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Join(before, "\n")).To(And(ContainSubstring("netns ksim-"), ContainSubstring("process ")),
			"the leftover check must see a running cluster, or it proves nothing")
		Expect(cluster.Down(ctx)).To(Succeed())
		Expect(cluster.Leftovers()).To(BeEmpty())
		Expect(cluster.Down(ctx)).To(Succeed())
		Expect(cluster.Leftovers()).To(BeEmpty())
	}, NodeTimeout(2*time.Minute))

	It("leaves nothing behind when taken down after every process was killed", func(ctx SpecContext) {
		Expect(cluster.Up(ctx, 2)).To(Succeed())
		kube, err := cluster.Client()
		Expect(err).NotTo(HaveOccurred())
		_, err = kube.CoreV1().Pods("default").Create(ctx,
			framework.WorkloadPod("default", "orphan", "node-2", corev1.RestartPolicyAlways, nil, 80), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Eventually(ctx, func(g Gomega) {
			p, err := kube.CoreV1().Pods("default").Get(ctx, "orphan", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(framework.PodReady(p)).To(BeTrue())
		}).WithTimeout(30 * time.Second).Should(Succeed())

		By("killing every process of the cluster with SIGKILL, as a crash or OOM would")
		left, err := cluster.Leftovers()
		Expect(err).NotTo(HaveOccurred())
		killed := 0
		for _, l := range left {
			var pid int
			if _, err := fmt.Sscanf(l, "process %d:", &pid); err == nil && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
				killed++
			}
		}
		Expect(killed).To(BeNumerically(">=", 5), "control plane, agents, kubelets, scheduler, workload: %v", left)

		Expect(cluster.Down(ctx)).To(Succeed())
		Expect(cluster.Leftovers()).To(BeEmpty())
	}, NodeTimeout(2*time.Minute))
})
