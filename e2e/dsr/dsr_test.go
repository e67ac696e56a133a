//go:build e2e

package dsr_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/e2e/framework"
)

// This test process, in the root namespace on the underlay, is the client
// outside the cluster. Its connection to node 1's NodePort goes to the only
// endpoint, on node 2, carrying the frontend; node 2's pod
// sees the client's address (with SNAT it would see node 1's), and its
// answers reach the client straight from node 2 with the frontend as source,
// or the TCP connection would never open. Over IPv4 the frontend rides in
// an IP option, over IPv6 in a Destination Options header.
var _ = Describe("NodePort with DSR", func() {
	It("reaches a remote endpoint that sees the client and answers it directly, over IPv4 and IPv6", func(ctx SpecContext) {
		const ns = "dsr-e2e"
		kube, err := cluster.Client()
		Expect(err).NotTo(HaveOccurred())
		_, err = kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}) })
		n1, n2 := cluster.Nodes()[0], cluster.Nodes()[1]
		p := framework.WorkloadPod(ns, "web", n2, corev1.RestartPolicyAlways, nil, 8080)
		p.Labels = map[string]string{"app": "web"}
		_, err = kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		dual := corev1.IPFamilyPolicyRequireDualStack
		svc, err := kube.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "web"}, IPFamilyPolicy: &dual,
				Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		node1, err := kube.CoreV1().Nodes().Get(ctx, n1, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		var n1IPs []string // IPv4 first
		for _, a := range node1.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && net.ParseIP(a.Address).To4() != nil {
				n1IPs = append([]string{a.Address}, n1IPs...)
			} else if a.Type == corev1.NodeInternalIP {
				n1IPs = append(n1IPs, a.Address)
			}
		}
		Expect(n1IPs).To(HaveLen(2), "node 1 should have an IPv4 and an IPv6 InternalIP")
		Eventually(ctx, func(g Gomega) {
			pod, err := kube.CoreV1().Pods(ns).Get(ctx, "web", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(framework.PodReady(pod)).To(BeTrue())
			svcs, err := cluster.AgentServices(ctx, n1)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(svcs.Services).To(ContainElement(SatisfyAll(HaveField("Type", "NodePort"),
				HaveField("Service", ContainSubstring(ns+"/web")), HaveField("Backends", HaveLen(1)))))
		}).WithTimeout(60 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())

		for _, c := range []struct{ node, client string }{{n1IPs[0], "172.30.0.1"}, {n1IPs[1], "fd00:172:30::1"}} {
			before, err := cluster.AgentFlows(ctx, n2, 0)
			Expect(err).NotTo(HaveOccurred())
			addr := net.JoinHostPort(c.node, fmt.Sprint(svc.Spec.Ports[0].NodePort))
			for i := 0; i < 5; i++ {
				conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
				Expect(err).NotTo(HaveOccurred(), "connect to %s", addr)
				conn.SetDeadline(time.Now().Add(3 * time.Second))
				fmt.Fprintf(conn, "who?\n")
				line, err := bufio.NewReader(conn).ReadString('\n')
				conn.Close()
				Expect(err).NotTo(HaveOccurred())
				Expect(strings.TrimSpace(line)).To(Equal(ns+"/web 8080 "+c.client), "the pod names the client it saw: the client itself")
				Expect(conn.RemoteAddr().String()).To(Equal(addr), "the answers come from the frontend")
			}
			Eventually(func() []api.Flow {
				f, _ := cluster.AgentFlows(ctx, n2, before.Next)
				return f.Flows
			}).WithTimeout(5*time.Second).Should(ContainElement(SatisfyAll(
				HaveField("Src", c.client), HaveField("DstPort", uint16(8080)), HaveField("Verdict", "forwarded"))),
				"node 2's pod should see the client's own address")
		}
	})
})
