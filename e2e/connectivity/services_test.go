//go:build e2e

package connectivity_test

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
	"k8s.io/client-go/kubernetes"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/e2e/framework"
	"github.com/kestrelnet/kestrel/sim/workload"
)

// The pods' programs translate ClusterIPs: a pod's connection to a Service
// reaches one of its endpoints, on either node, and a Service without
// endpoints refuses at once, as kube-proxy's REJECT does.
var _ = Describe("ClusterIP services", Ordered, func() {
	var kube kubernetes.Interface

	BeforeAll(func(ctx SpecContext) {
		var err error
		kube, err = cluster.Client()
		Expect(err).NotTo(HaveOccurred())
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "svc-e2e"}}
		_, err = kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { kube.CoreV1().Namespaces().Delete(ctx, "svc-e2e", metav1.DeleteOptions{}) })
		for i, node := range cluster.Nodes() {
			p := cluster.Workload(framework.WorkloadPod("svc-e2e", fmt.Sprintf("web-%d", i+1), node, corev1.RestartPolicyAlways, nil, 8080))
			p.Labels = map[string]string{"app": "web"}
			_, err := kube.CoreV1().Pods("svc-e2e").Create(ctx, p, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
		}
		client := cluster.Workload(framework.WorkloadPod("svc-e2e", "client", cluster.Nodes()[0], corev1.RestartPolicyAlways, nil))
		_, err = kube.CoreV1().Pods("svc-e2e").Create(ctx, client, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		for _, s := range []struct {
			name     string
			selector map[string]string
		}{{"web", map[string]string{"app": "web"}}, {"nobody", map[string]string{"app": "nobody"}}} {
			svc := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: "svc-e2e"},
				Spec: corev1.ServiceSpec{Selector: s.selector, Ports: []corev1.ServicePort{
					{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}}},
			}
			_, err := kube.CoreV1().Services("svc-e2e").Create(ctx, svc, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
		}
		Eventually(ctx, func(g Gomega) {
			pods, err := kube.CoreV1().Pods("svc-e2e").List(ctx, metav1.ListOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pods.Items).To(HaveLen(len(cluster.Nodes()) + 1))
			for i := range pods.Items {
				g.Expect(framework.PodReady(&pods.Items[i])).To(BeTrue(), pods.Items[i].Name)
			}
			svcs, err := cluster.AgentServices(ctx, cluster.Nodes()[0])
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(svcs.Services).To(ContainElement(SatisfyAll(
				HaveField("Service", ContainSubstring("svc-e2e/web:http")), HaveField("Backends", HaveLen(len(cluster.Nodes()))))))
		}).WithTimeout(60 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
	}, NodeTimeout(2*time.Minute))

	clusterIP := func(ctx SpecContext, name string) string {
		svc, err := kube.CoreV1().Services("svc-e2e").Get(ctx, name, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		return svc.Spec.ClusterIP
	}
	fromClient := func(ctx SpecContext, f func() error) error {
		client, err := kube.CoreV1().Pods("svc-e2e").Get(ctx, "client", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		return cluster.InPod(client, f)
	}

	It("sends each connection to a ClusterIP to one of the service's endpoints, on both nodes", func(ctx SpecContext) {
		vip := net.JoinHostPort(clusterIP(ctx, "web"), "80")
		seen := map[string]int{}
		for i := 0; i < 24; i++ {
			Expect(fromClient(ctx, func() error {
				answer, err := askWho(vip)
				seen[answer]++
				return err
			})).To(Succeed())
		}
		// Each endpoint names itself, its port and the client it saw: the
		// client pod's own address (a ClusterIP is not source-NATed).
		client, err := kube.CoreV1().Pods("svc-e2e").Get(ctx, "client", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		want := map[string]bool{}
		for i := range cluster.Nodes() {
			want[fmt.Sprintf("svc-e2e/web-%d 8080 %s", i+1, client.Status.PodIP)] = true
		}
		for answer := range seen {
			Expect(want).To(HaveKey(answer), "an answer from something that is no endpoint of the service")
		}
		Expect(seen).To(HaveLen(len(want)), "24 connections never reached every endpoint: %v", seen)
	})

	It("translates a pod process's connect() at the socket (socket LB): its peer is the ClusterIP, its SYN goes to an endpoint", func(ctx SpecContext) {
		node := cluster.Nodes()[0]
		client, err := kube.CoreV1().Pods("svc-e2e").Get(ctx, "client", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		st, err := cluster.AgentStatus(ctx, node)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.SocketLBCgroup).NotTo(BeEmpty(), "the agent runs without socket LB")
		before, err := cluster.AgentFlows(ctx, node, 0)
		Expect(err).NotTo(HaveOccurred())
		ip := clusterIP(ctx, "web")
		res, err := cluster.ConnectFromPod(client, workload.ConnectRequest{Protocol: "tcp", Target: net.JoinHostPort(ip, "80"), Msg: "who?\n"})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Err).To(BeEmpty())
		Expect(res.Peer).To(Equal(net.JoinHostPort(ip, "80")), "getpeername() must give the ClusterIP back")
		Expect(res.Answer).To(HavePrefix("svc-e2e/web-"))
		after, err := cluster.AgentStatus(ctx, node)
		Expect(err).NotTo(HaveOccurred())
		Expect(after.Datapath.SocketLBTranslations).To(BeNumerically(">", 0))
		var flows []api.Flow
		Eventually(func() []api.Flow {
			f, _ := cluster.AgentFlows(ctx, node, before.Next)
			flows = f.Flows
			return flows
		}).WithTimeout(5 * time.Second).Should(ContainElement(SatisfyAll(
			HaveField("Src", client.Status.PodIP), HaveField("DstPort", BeEquivalentTo(8080)))))
		for _, f := range flows {
			Expect(f.Dst).NotTo(Equal(ip), "a packet to the ClusterIP crossed the wire: the socket was not translated")
		}
	})

	It("drops a connection to an unallocated address of the service range as SERVICE_UNALLOCATED", func(ctx SpecContext) {
		node := cluster.Nodes()[0]
		before, err := cluster.AgentFlows(ctx, node, 0)
		Expect(err).NotTo(HaveOccurred())
		err = fromClient(ctx, func() error {
			c, err := net.DialTimeout("tcp", "10.96.255.254:80", 700*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err
		})
		Expect(err).To(HaveOccurred(), "an address no service holds answered")
		Eventually(func() []api.Flow {
			f, _ := cluster.AgentFlows(ctx, node, before.Next)
			return f.Flows
		}).WithTimeout(5 * time.Second).Should(ContainElement(SatisfyAll(
			HaveField("Dst", "10.96.255.254"), HaveField("Reason", "SERVICE_UNALLOCATED"))))
	})

	It("refuses a connection to a service without endpoints at once", func(ctx SpecContext) {
		vip := net.JoinHostPort(clusterIP(ctx, "nobody"), "80")
		start := time.Now()
		err := fromClient(ctx, func() error {
			c, err := net.DialTimeout("tcp", vip, 3*time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		Expect(err).To(MatchError(ContainSubstring("refused")))
		Expect(time.Since(start)).To(BeNumerically("<", time.Second))
	})
})

// askWho connects to addr (from the namespace the caller is in), asks the
// workload server who it is, and returns its one-line answer: the pod, its
// port and the client address it saw.
func askWho(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "who?\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}
