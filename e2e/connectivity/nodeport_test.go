//go:build e2e

package connectivity_test

import (
	"fmt"
	"net"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/e2e/framework"
)

// The node device's programs serve NodePorts to traffic from outside the
// cluster: the outside client is the provider's (sim: this test process, in
// the root namespace, on the underlay; kind: the outside host container on
// kind's network). A local backend sees the client's own address; a remote
// one sees the node that SNATed it; externalTrafficPolicy Local drops at a
// node without a local endpoint.
var _ = Describe("NodePort services from outside", Ordered, func() {
	const ns = "nodeport-e2e"
	var kube kubernetes.Interface
	nodeIPs := map[string]string{}
	nodePorts := map[string]int32{}
	var client string // the outside client's address, as the nodes see it

	BeforeAll(func(ctx SpecContext) {
		var err error
		kube, err = cluster.Client()
		Expect(err).NotTo(HaveOccurred())
		addr, err := cluster.OutsideAddr()
		Expect(err).NotTo(HaveOccurred())
		client = addr.String()
		_, err = kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}) })
		for i, node := range cluster.Nodes()[:2] {
			p := cluster.Workload(framework.WorkloadPod(ns, fmt.Sprintf("web-%d", i+1), node, corev1.RestartPolicyAlways, nil, 8080))
			p.Labels = map[string]string{"app": "web", "solo": fmt.Sprint(i == 0)}
			_, err := kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			n, err := kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			for _, a := range n.Status.Addresses {
				if a.Type == corev1.NodeInternalIP && net.ParseIP(a.Address).To4() != nil {
					nodeIPs[node] = a.Address
				}
			}
		}
		for _, s := range []struct {
			name     string
			selector map[string]string
			policy   corev1.ServiceExternalTrafficPolicy
		}{{"web", map[string]string{"app": "web"}, corev1.ServiceExternalTrafficPolicyCluster},
			{"solo-local", map[string]string{"solo": "true"}, corev1.ServiceExternalTrafficPolicyLocal}} {
			svc := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: ns},
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: s.selector, ExternalTrafficPolicy: s.policy,
					Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}}},
			}
			got, err := kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			nodePorts[s.name] = got.Spec.Ports[0].NodePort
		}
		Eventually(ctx, func(g Gomega) {
			pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pods.Items).To(HaveLen(2))
			for i := range pods.Items {
				g.Expect(framework.PodReady(&pods.Items[i])).To(BeTrue(), pods.Items[i].Name)
			}
			for _, node := range cluster.Nodes()[:2] {
				svcs, err := cluster.AgentServices(ctx, node)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(svcs.Services).To(ContainElement(SatisfyAll(HaveField("Type", "NodePort"),
					HaveField("Service", ContainSubstring(ns+"/web:http")), HaveField("Backends", HaveLen(2)))))
			}
		}).WithTimeout(60 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
	}, NodeTimeout(2*time.Minute))

	ask := func(addr string) (answer string, err error) {
		err = cluster.InOutside(func() error {
			answer, err = askWho(addr)
			return err
		})
		return answer, err
	}
	flowsSince := func(ctx SpecContext, node string) func() []api.Flow {
		before, err := cluster.AgentFlows(ctx, node, 0)
		Expect(err).NotTo(HaveOccurred())
		return func() []api.Flow {
			f, _ := cluster.AgentFlows(ctx, node, before.Next)
			return f.Flows
		}
	}

	It("reaches local and remote endpoints through one node's NodePort; the local one sees the client, the remote one the node", func(ctx SpecContext) {
		n1, n2 := cluster.Nodes()[0], cluster.Nodes()[1]
		flows1, flows2 := flowsSince(ctx, n1), flowsSince(ctx, n2)
		addr := net.JoinHostPort(nodeIPs[n1], fmt.Sprint(nodePorts["web"]))
		seen := map[string]int{}
		for i := 0; i < 24; i++ {
			answer, err := ask(addr)
			Expect(err).NotTo(HaveOccurred())
			seen[answer]++
		}
		Expect(seen).To(HaveLen(2), "24 connections through %s never reached both endpoints: %v", addr, seen)
		// The servers name the client they saw after the answer.
		Expect(seen).To(HaveKey(ns + "/web-1 8080 " + client))
		Expect(seen).To(HaveKey(ns + "/web-2 8080 " + nodeIPs[n1]))
		// web-1 (on node 1) is reached from the client itself; web-2 (on
		// node 2) from node 1, which SNATed the flow.
		Eventually(flows1).WithTimeout(5 * time.Second).Should(ContainElement(SatisfyAll(
			HaveField("Src", client), HaveField("DstPort", uint16(8080)), HaveField("Verdict", "forwarded"))))
		Eventually(flows2).WithTimeout(5 * time.Second).Should(ContainElement(SatisfyAll(
			HaveField("Src", nodeIPs[n1]), HaveField("DstPort", uint16(8080)), HaveField("Verdict", "forwarded"))))
	})

	It("serves externalTrafficPolicy Local only where an endpoint is local, and drops elsewhere with a reason", func(ctx SpecContext) {
		n1, n2 := cluster.Nodes()[0], cluster.Nodes()[1]
		for i := 0; i < 4; i++ {
			answer, err := ask(net.JoinHostPort(nodeIPs[n1], fmt.Sprint(nodePorts["solo-local"])))
			Expect(err).NotTo(HaveOccurred())
			Expect(answer).To(Equal(ns + "/web-1 8080 " + client))
		}
		flows2 := flowsSince(ctx, n2)
		_, err := ask(net.JoinHostPort(nodeIPs[n2], fmt.Sprint(nodePorts["solo-local"])))
		Expect(err).To(HaveOccurred(), "node 2 has no local endpoint: the connection must not be served")
		Eventually(flows2).WithTimeout(5 * time.Second).Should(ContainElement(SatisfyAll(
			HaveField("Reason", "SERVICE_NO_BACKEND"), HaveField("DstPort", uint16(nodePorts["solo-local"])))))
	})

	It("publishes a hostPort on its node's address only, to the pod behind it", func(ctx SpecContext) {
		n1, n2 := cluster.Nodes()[0], cluster.Nodes()[1]
		p := cluster.Workload(framework.WorkloadPod(ns, "hosted", n1, corev1.RestartPolicyAlways, nil, 8090))
		p.Spec.Containers[0].Ports[0].HostPort = 8091
		_, err := kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Eventually(ctx, func(g Gomega) {
			pod, err := kube.CoreV1().Pods(ns).Get(ctx, "hosted", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(framework.PodReady(pod)).To(BeTrue())
			svcs, err := cluster.AgentServices(ctx, n1)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(svcs.Services).To(ContainElement(HaveField("Type", "HostPort")))
		}).WithTimeout(60 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
		answer, err := ask(net.JoinHostPort(nodeIPs[n1], "8091"))
		Expect(err).NotTo(HaveOccurred())
		Expect(answer).To(Equal(ns + "/hosted 8090 " + client))
		_, err = ask(net.JoinHostPort(nodeIPs[n2], "8091"))
		Expect(err).To(HaveOccurred(), "the hostPort must not be published on node 2")
	})
})
