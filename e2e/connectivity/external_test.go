//go:build e2e

package connectivity_test

import (
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kestrelnet/kestrel/e2e/framework"
	"github.com/kestrelnet/kestrel/scenarios/engine"
)

// A scenario's Services reach the cluster as written: the LoadBalancer
// ingress through the status subresource, nodePorts and externalIPs as
// given; its spec.world servers answer on the cluster's outside host (sim's
// namespace, where the nodes' default routes lead; kind's container, to which
// the nodes route each world address).
var _ = Describe("Scenario services and world servers", Ordered, func() {
	It("writes the Service as the scenario has it and serves the world from the outside host", func(ctx SpecContext) {
		plan, err := framework.Plan(framework.RepoPath("scenarios/library/services-external/loadbalancer.yaml"))
		Expect(err).NotTo(HaveOccurred())
		sess, err := runner.Begin(ctx, plan.Scenario)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(sess.Close)
		c := plan.Steps[0].Cluster
		c.World = []engine.WorldServer{{IP: mustAddr("203.0.113.11"), Ports: []engine.WorldPort{{Port: 80, Protocol: "TCP"}}}}
		Expect(sess.Sync(ctx, c)).To(Succeed())

		kube, err := cluster.Client()
		Expect(err).NotTo(HaveOccurred())
		svc, err := kube.CoreV1().Services("web").Get(ctx, "web", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(svc.Spec.Type).To(Equal(corev1.ServiceTypeLoadBalancer))
		Expect(svc.Spec.ExternalIPs).To(Equal([]string{"198.51.100.20"}))
		Expect(svc.Spec.Ports[0].NodePort).To(Equal(int32(30081)))
		Expect(svc.Status.LoadBalancer.Ingress).To(ConsistOf(HaveField("IP", "198.51.100.10")))

		// A node reaches the world server through its default route, and
		// the server names the node's address as the client.
		node := engine.Peer{Node: plan.Steps[0].Cluster.Nodes[0], IP: plan.Steps[0].Cluster.NodeIPs[plan.Steps[0].Cluster.Nodes[0]][0]}
		Eventually(ctx, func() []string {
			return framework.CheckProbe(ctx, sess, engine.Probe{
				Name: "node-to-world", From: node, To: engine.Peer{IP: mustAddr("203.0.113.11")}, Protocol: "TCP", Port: 80,
				Exchange: "connect", Expect: engine.Expectation{Verdict: "allowed", SourceIP: &node},
			})
		}).WithTimeout(10 * time.Second).Should(BeEmpty())
	}, NodeTimeout(3*time.Minute))
})

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
