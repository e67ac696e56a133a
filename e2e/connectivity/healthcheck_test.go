//go:build e2e

package connectivity_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/kestrelnet/kestrel/e2e/framework"
)

// A LoadBalancer service with externalTrafficPolicy Local gets a
// healthCheckNodePort, which every node serves as kube-proxy does: 200 on
// the node with a ready endpoint of the service, 503 on the others, with
// kube-proxy's JSON body and headers; the port closes when the service goes.
// The agents also serve kube-proxy's /healthz and /livez on 10256.
var _ = Describe("healthCheckNodePort", Ordered, func() {
	const ns = "hc-e2e"
	var kube kubernetes.Interface
	var hcPort int32

	type answer struct {
		code   int
		weight string
		body   struct {
			Service struct {
				Namespace string `json:"namespace"`
				Name      string `json:"name"`
			} `json:"service"`
			LocalEndpoints      int  `json:"localEndpoints"`
			ServiceProxyHealthy bool `json:"serviceProxyHealthy"`
		}
		raw string
	}
	// getFrom asks node's InternalIPs (both families) from inside from's
	// namespace: from the node itself as curl on the node would, or from
	// another node as a load balancer's probe would, through the node's
	// device and its programs.
	getFrom := func(ctx SpecContext, from, node string, port int32, path string) ([]answer, error) {
		n, err := kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		var out []answer
		err = cluster.InNode(from, func() error {
			for _, a := range n.Status.Addresses {
				if a.Type != corev1.NodeInternalIP {
					continue
				}
				ip := netip.MustParseAddr(a.Address)
				c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
				resp, err := c.Get(fmt.Sprintf("http://%s%s", netip.AddrPortFrom(ip, uint16(port)), path))
				if err != nil {
					return err
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					return err
				}
				ans := answer{code: resp.StatusCode, weight: resp.Header.Get("X-Load-Balancing-Endpoint-Weight"), raw: string(b)}
				if path == "/" {
					if err := json.Unmarshal(b, &ans.body); err != nil {
						return fmt.Errorf("%s: body %q: %w", ip, b, err)
					}
					if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Type") != "application/json" {
						return fmt.Errorf("%s: headers %v", ip, resp.Header)
					}
				}
				out = append(out, ans)
			}
			return nil
		})
		return out, err
	}
	get := func(ctx SpecContext, node string, port int32, path string) ([]answer, error) {
		return getFrom(ctx, node, node, port, path)
	}

	BeforeAll(func(ctx SpecContext) {
		var err error
		kube, err = cluster.Client()
		Expect(err).NotTo(HaveOccurred())
		_, err = kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}) })
		p := cluster.Workload(framework.WorkloadPod(ns, "web", cluster.Nodes()[0], corev1.RestartPolicyAlways, nil, 8080))
		p.Labels = map[string]string{"app": "lb"}
		_, err = kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "lb", Namespace: ns},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: p.Labels,
				ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
				Ports:                 []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}}},
		}
		created, err := kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		hcPort = created.Spec.HealthCheckNodePort
		Expect(hcPort).NotTo(BeZero(), "the API server allocates a healthCheckNodePort")
	}, NodeTimeout(time.Minute))

	It("answers 200 on the node with the ready endpoint and 503 on the other", func(ctx SpecContext) {
		Eventually(ctx, func(g Gomega) {
			for i, node := range cluster.Nodes() {
				ans, err := get(ctx, node, hcPort, "/")
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(ans).To(HaveLen(2), "one answer per node address family")
				want, code := 0, http.StatusServiceUnavailable
				if i == 0 {
					want, code = 1, http.StatusOK
				}
				for _, a := range ans {
					g.Expect(a.code).To(Equal(code), "%s: %s", node, a.raw)
					g.Expect(a.body.Service.Namespace).To(Equal(ns))
					g.Expect(a.body.Service.Name).To(Equal("lb"))
					g.Expect(a.body.LocalEndpoints).To(Equal(want))
					g.Expect(a.body.ServiceProxyHealthy).To(BeTrue())
					g.Expect(a.weight).To(Equal(fmt.Sprint(want)))
				}
			}
		}).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		ans, err := get(ctx, cluster.Nodes()[0], hcPort, "/")
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("node-1 answers %d:\n%s\n", ans[0].code, ans[0].raw)
		// From the other node, over the underlay, as a load balancer probes.
		ans, err = getFrom(ctx, cluster.Nodes()[1], cluster.Nodes()[0], hcPort, "/")
		Expect(err).NotTo(HaveOccurred())
		Expect(ans).To(HaveLen(2))
		for _, a := range ans {
			Expect(a.code).To(Equal(http.StatusOK), a.raw)
			Expect(a.body.LocalEndpoints).To(Equal(1))
		}
	})

	It("serves kube-proxy's /healthz and /livez on 10256", func(ctx SpecContext) {
		for _, path := range []string{"/healthz", "/livez"} {
			ans, err := get(ctx, cluster.Nodes()[0], 10256, path)
			Expect(err).NotTo(HaveOccurred())
			for _, a := range ans {
				Expect(a.code).To(Equal(http.StatusOK), "%s: %s", path, a.raw)
				Expect(a.raw).To(ContainSubstring(`"currentTime"`))
			}
		}
	})

	It("turns 503 when the endpoint goes, and closes when the service goes", func(ctx SpecContext) {
		Expect(kube.CoreV1().Pods(ns).Delete(ctx, "web", metav1.DeleteOptions{})).To(Succeed())
		Eventually(ctx, func(g Gomega) {
			ans, err := get(ctx, cluster.Nodes()[0], hcPort, "/")
			g.Expect(err).NotTo(HaveOccurred())
			for _, a := range ans {
				g.Expect(a.code).To(Equal(http.StatusServiceUnavailable), a.raw)
				g.Expect(a.body.LocalEndpoints).To(BeZero())
			}
		}).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		Expect(kube.CoreV1().Services(ns).Delete(ctx, "lb", metav1.DeleteOptions{})).To(Succeed())
		Eventually(ctx, func() error {
			_, err := get(ctx, cluster.Nodes()[0], hcPort, "/")
			return err
		}).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(
			Satisfy(func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }))
	})
})
