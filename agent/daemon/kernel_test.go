package daemon_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/agent/daemon"
	"github.com/kestrelnet/kestrel/agent/k8s"
	"github.com/kestrelnet/kestrel/agent/observe/promtooltest"
	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newNetwork is a node and a pod namespace as the CNI plugin wires them.
func newNetwork(t *testing.T) *datapathtest.PodNetwork {
	return datapathtest.NewPodNetwork(t, "kestrel-agent-test", netip.MustParseAddr("10.201.0.1"), netip.MustParseAddr("10.201.0.2"))
}

// nodeKernel attaches inside the node namespace. The real agent runs wholly
// inside its node's namespace; this test process does not, and a netns is
// per thread, so the attach call is pinned to a thread moved there.
type nodeKernel struct {
	daemon.Kernel
	node netns.NsHandle
}

func (k nodeKernel) Attach(ifindex int, pin string) (daemon.Links, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer orig.Close()
	if err := netns.Set(k.node); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	l, err := k.Kernel.Attach(ifindex, pin)
	if netns.Set(orig) == nil {
		runtime.UnlockOSThread() // a thread left in the node namespace must die with its goroutine
	}
	return l, err
}

func TestAgentEnforcesNetworkPolicyOnRealTraffic(t *testing.T) {
	fs := datapathtest.BPFFS(t)
	dp := datapathtest.LoadConfig(t, datapath.Config{PinPath: filepath.Join(fs, "maps")})
	n := newNetwork(t)

	cs := fake.NewSimpleClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", ResourceVersion: "1"}},
		&corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "node-1", ResourceVersion: "2"},
			Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.NodeIP.String()}}},
		},
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "a", Labels: map[string]string{"app": "a"}, ResourceVersion: "3"},
			Spec:       corev1.PodSpec{NodeName: "node-1"},
		},
	)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(k8sruntime.NewScheme(), k8s.ListKinds)
	state := t.TempDir()
	socket := filepath.Join(state, "agent.sock")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := daemon.New(daemon.Config{
		Node: "node-1", NodeIP: n.NodeIP,
		LinkPinDir:   filepath.Join(fs, "links"),
		RegistryPath: filepath.Join(state, "endpoints.json"),
	}, nodeKernel{daemon.Kernel{Datapath: dp}, n.Node}, cs, dyn, log)
	must(t, err)
	ln, err := api.Listen(socket)
	must(t, err)
	if fi, err := os.Stat(socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served, ran := make(chan struct{}), make(chan struct{})
	go func() { api.Serve(ctx, ln, d, log); close(served) }()
	go func() { d.Run(ctx); close(ran) }()
	t.Cleanup(func() { cancel(); <-served; <-ran })

	client := api.NewClient(socket)
	waitFor(t, "healthz", func() bool { return client.Healthz(ctx) == nil })
	resp, err := client.PutEndpoint(ctx, api.EndpointRequest{
		ContainerID: "c0ffee", PodNamespace: "default", PodName: "a",
		HostInterface: "lxc0", HostIfIndex: n.HostIfindex, IPs: []string{n.PodIP.String()}, MAC: n.PodMAC.String(),
	})
	if err != nil {
		datapathtest.SkipOrFail(t, err)
	}
	if resp.ID == 0 || resp.Identity < 256 {
		t.Fatalf("endpoint response %+v", resp)
	}
	defer client.DeleteEndpoint(context.Background(), "c0ffee")
	for _, suffix := range []string{"-ingress", "-egress"} {
		if _, err := os.Stat(filepath.Join(fs, "links", "c0ffee"+suffix)); err != nil {
			t.Fatalf("link not pinned: %v", err)
		}
	}

	echo := n.EchoServer(t, "8080").Addr().String()
	connect := func() error {
		var c net.Conn
		var err error
		n.In(t, n.Pod, func() { c, err = net.DialTimeout("tcp", echo, 700*time.Millisecond) })
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		_, err = bufio.NewReader(c).ReadString('\n')
		return err
	}
	if err := connect(); err != nil {
		t.Fatalf("no policy selects the pod, yet connecting failed: %v", err)
	}

	tcp := corev1.ProtocolTCP
	other := intstr.FromInt32(9090)
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "only-9090", ResourceVersion: "50"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress:      []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &other}}}},
		},
	}
	_, err = cs.NetworkingV1().NetworkPolicies("default").Create(ctx, np, metav1.CreateOptions{})
	must(t, err)
	waitFor(t, "policy revision 50", func() bool {
		st, err := client.Status(ctx)
		return err == nil && st.Revisions["networkpolicies"] >= 50
	})
	if err := connect(); err == nil {
		t.Fatal("the egress policy allows only 9090, yet connecting to 8080 succeeded")
	}
	// The drop shows in the agent's Prometheus metrics, read from the datapath.
	go d.RunMaintenance(ctx, dp, "medium", time.Hour)
	waitFor(t, "the denied SYN in the metrics", func() bool {
		return strings.Contains(scrape(t, d), `cilium_drop_count_total{direction="EGRESS",reason="Policy denied"}`)
	})
	metrics := scrape(t, d)
	if !strings.Contains(metrics, `cilium_forward_count_total{direction="EGRESS"}`) || !strings.Contains(metrics, "cilium_endpoint 1") {
		t.Fatalf("metrics lack the forwarded packets or the endpoint:\n%s", metrics)
	}

	must(t, cs.NetworkingV1().NetworkPolicies("default").Delete(ctx, "only-9090", metav1.DeleteOptions{}))
	waitFor(t, "egress no longer enforced", func() bool {
		st, err := client.Status(ctx)
		return err == nil && len(st.Endpoints) == 1 && !st.Endpoints[0].EgressEnforced
	})
	if err := connect(); err != nil {
		t.Fatalf("the policy is gone, yet connecting failed: %v", err)
	}

	must(t, client.DeleteEndpoint(ctx, "c0ffee"))
	must(t, client.DeleteEndpoint(ctx, "c0ffee"))
	if _, err := os.Stat(filepath.Join(fs, "links", "c0ffee-ingress")); !os.IsNotExist(err) {
		t.Fatalf("link still pinned after delete: %v", err)
	}
	// Last: it skips where promtool is missing.
	promtooltest.Check(t, []byte(metrics))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// scrape reads the agent's metrics as Prometheus would.
func scrape(t *testing.T, d *daemon.Daemon) string {
	t.Helper()
	rec := httptest.NewRecorder()
	d.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}
