package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/agent/identity"
	"github.com/kestrelnet/kestrel/agent/k8s"
	"github.com/kestrelnet/kestrel/datapath"
)

// cluster is a daemon for node-1 against fake API clients and a fake datapath.
type cluster struct {
	t    *testing.T
	cs   *fake.Clientset
	dyn  *dynamicfake.FakeDynamicClient
	dp   *fakeDatapath
	cfg  Config
	log  *slog.Logger
	d    *Daemon
	stop func() // stops d and waits for it
}

func node(name string, ips ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "1"}}
	for _, ip := range ips {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	return n
}

// pod makes a pod; ips is "" (none yet) or comma-separated, one per family.
func pod(name, nodeName, ips, app string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": app}, ResourceVersion: "2"},
		Spec:       corev1.PodSpec{NodeName: nodeName},
	}
	if ips != "" {
		for _, ip := range strings.Split(ips, ",") {
			p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip})
		}
		p.Status.PodIP = p.Status.PodIPs[0].IP
	}
	return p
}

func newCluster(t *testing.T, objs ...runtime.Object) *cluster {
	t.Helper()
	return newClusterWith(t, newFakeDatapath(), objs...)
}

func newClusterWith(t *testing.T, dp *fakeDatapath, objs ...runtime.Object) *cluster {
	t.Helper()
	base := []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", ResourceVersion: "1"}},
		node("node-1", "172.30.0.11", "fd00:172:30::11"), node("node-2", "172.30.0.12", "fd00:172:30::12"),
	}
	c := &cluster{
		t:   t,
		cs:  fake.NewSimpleClientset(append(base, objs...)...),
		dyn: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), k8s.ListKinds),
		dp:  dp,
	}
	dir := t.TempDir()
	c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		c.log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c.cfg = Config{
		Node: "node-1", NodeIP: netip.MustParseAddr("172.30.0.11"),
		LinkPinDir: filepath.Join(dir, "links"), RegistryPath: filepath.Join(dir, "endpoints.json"),
		Debounce: 5 * time.Millisecond, EndpointTimeout: 5 * time.Second,
	}
	c.start()
	t.Cleanup(func() { c.stop() })
	return c
}

// start runs a daemon on the cluster's configuration, datapath and files.
func (c *cluster) start() {
	c.t.Helper()
	d, err := New(c.cfg, c.dp, c.cs, c.dyn, c.log)
	if err != nil {
		c.t.Fatal(err)
	}
	c.d = d
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	c.stop = func() { cancel(); <-done }
}

// restart replaces the daemon with a new one, as a restarted agent process
// finds the pinned datapath and its files.
func (c *cluster) restart() {
	c.t.Helper()
	c.stop()
	c.start()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// eventually polls cond until it holds or a few seconds pass.
func (c *cluster) eventually(what string, cond func() bool) {
	c.t.Helper()
	c.eventuallyWithin(5*time.Second, what, cond)
}

// eventuallyWithin is eventually with a deadline of its own, for clusters of
// thousands of objects on a loaded machine.
func (c *cluster) eventuallyWithin(d time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out waiting until %s; status %+v", what, c.d.Status(context.Background()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testMAC is the pod-side MAC the tests register.
const testMAC = "0a:58:0a:f4:00:05"

func (c *cluster) put(containerID, podName string, ips ...string) api.EndpointResponse {
	c.t.Helper()
	resp, err := c.d.PutEndpoint(context.Background(), api.EndpointRequest{
		ContainerID: containerID, PodNamespace: "default", PodName: podName,
		HostInterface: "lxc" + containerID, HostIfIndex: 42, MAC: testMAC, IPs: ips,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return resp
}

func hasEntry(entries []datapath.PolicyEntry, want datapath.PolicyEntry) bool {
	for _, e := range entries {
		e.Cookie = 0
		if e == want {
			return true
		}
	}
	return false
}

func TestRegisteredEndpointGetsIdentityAndIPCache(t *testing.T) {
	// The local pod has no IP in the API yet, as during a real CNI ADD.
	c := newCluster(t, pod("a", "node-1", "", "a"), pod("b", "node-2", "10.244.1.5", "b"))
	resp := c.put("c1", "a", "10.244.0.5")
	if resp.ID == 0 || resp.Identity < uint32(identity.MinClusterIdentity) {
		t.Fatalf("response %+v lacks an endpoint id or a pod identity", resp)
	}
	ep, _, ok := c.dp.endpoint(resp.ID)
	if !ok || ep.Identity != resp.Identity || ep.IngressEnforced || ep.EgressEnforced || ep.IfIndex != 42 {
		t.Fatalf("installed endpoint %+v (present %v) does not match %+v, unenforced, on ifindex 42", ep, ok, resp)
	}
	if pin := filepath.Join(c.d.cfg.LinkPinDir, "c1"); c.dp.attached[pin] != 42 {
		t.Fatalf("not attached at %s: %v", pin, c.dp.attached)
	}
	c.dp.mu.Lock()
	ipc := c.dp.ipcache
	c.dp.mu.Unlock()
	for p, want := range map[string]uint32{
		"172.30.0.11/32": uint32(identity.Host), "172.30.0.12/32": uint32(identity.RemoteNode),
		"10.244.0.5/32": resp.Identity,
	} {
		if got := ipc[netip.MustParsePrefix(p)]; got != want {
			t.Errorf("ipcache %s = %d, want %d", p, got, want)
		}
	}
	if ipc[netip.MustParsePrefix("10.244.1.5/32")] < uint32(identity.MinClusterIdentity) {
		t.Errorf("the remote pod is not in the ipcache: %v", ipc)
	}
	st := c.d.Status(context.Background())
	if len(st.Endpoints) != 1 || st.Endpoints[0].Pod != "default/a" || st.Revisions["pods"] < 2 {
		t.Fatalf("status %+v", st)
	}

	if err := c.d.DeleteEndpoint(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	if err := c.d.DeleteEndpoint(context.Background(), "c1"); err != nil {
		t.Fatalf("a second delete must succeed: %v", err)
	}
	if _, _, ok := c.dp.endpoint(resp.ID); ok || len(c.dp.attached) != 0 {
		t.Fatalf("endpoint still installed or attached after delete: %v", c.dp.attached)
	}
}

func TestNetworkPolicyEnforcesIngressAndAdvancesRevision(t *testing.T) {
	c := newCluster(t, pod("a", "node-1", "", "a"), pod("b", "node-2", "10.244.1.5", "b"))
	resp := c.put("c1", "a", "10.244.0.5")
	tcp := corev1.ProtocolTCP
	port := intstr.FromInt32(80)
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "allow-b", ResourceVersion: "100"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "b"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
			}},
		},
	}
	if _, err := c.cs.NetworkingV1().NetworkPolicies("default").Create(context.Background(), np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.eventually("the policy revision reaches the policy's resourceVersion", func() bool { return c.d.StreamRevision("networkpolicies") >= 100 })
	ep, entries, _ := c.dp.endpoint(resp.ID)
	if !ep.IngressEnforced || ep.EgressEnforced {
		t.Fatalf("endpoint %+v: want ingress enforced only", ep)
	}
	c.dp.mu.Lock()
	idB := c.dp.ipcache[netip.MustParsePrefix("10.244.1.5/32")]
	c.dp.mu.Unlock()
	want := datapath.PolicyEntry{Identity: idB, Direction: datapath.Ingress, Protocol: 6, PortLo: 80, PortHi: 80, Action: datapath.PolicyAllow}
	if !hasEntry(entries, want) {
		t.Fatalf("policy %+v lacks %+v", entries, want)
	}
	host := datapath.PolicyEntry{Identity: uint32(identity.Host), Direction: datapath.Ingress, Action: datapath.PolicyAllow}
	if !hasEntry(entries, host) {
		t.Fatalf("policy %+v lacks the allow-localhost entry", entries)
	}
}

func TestBadCiliumPolicyIsReportedAndIgnored(t *testing.T) {
	c := newCluster(t, pod("a", "node-1", "", "a"))
	resp := c.put("c1", "a", "10.244.0.5")
	bad := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
		"metadata": map[string]any{"namespace": "default", "name": "typo", "resourceVersion": "200", "uid": "u-bad"},
		"spec": map[string]any{
			"endpointSelector": map[string]any{"matchLabels": map[string]any{"app": "a"}},
			"ingress":          []any{map[string]any{"fromEndpointz": []any{map[string]any{}}}},
		},
	}}
	good := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
		"metadata": map[string]any{"namespace": "default", "name": "egress-deny", "resourceVersion": "201", "uid": "u-good"},
		"spec": map[string]any{
			"endpointSelector": map[string]any{"matchLabels": map[string]any{"app": "a"}},
			"egress":           []any{map[string]any{}},
		},
	}}
	for _, o := range []*unstructured.Unstructured{bad, good} {
		if _, err := c.dyn.Resource(k8s.CNPResource).Namespace("default").Create(context.Background(), o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c.eventually("both policies are seen", func() bool { return c.d.StreamRevision("ciliumnetworkpolicies") >= 201 })
	st := c.d.Status(context.Background())
	if len(st.PolicyErrors) != 1 || !strings.Contains(st.PolicyErrors[0], "CiliumNetworkPolicy/default/typo") || !strings.Contains(st.PolicyErrors[0], "fromEndpointz") {
		t.Fatalf("policy errors %q should name the object and the field", st.PolicyErrors)
	}
	if ep, _, _ := c.dp.endpoint(resp.ID); !ep.EgressEnforced || ep.IngressEnforced {
		t.Fatalf("the good policy should still make egress enforced only: %+v", ep)
	}
	c.eventually("a warning event is recorded", func() bool {
		evs, _ := c.cs.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{})
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == "typo" && e.Reason == "PolicyRejected" && strings.Contains(e.Message, "fromEndpointz") {
				return true
			}
		}
		return false
	})
}

func TestRegistrationWaitsForThePod(t *testing.T) {
	c := newCluster(t)
	done := make(chan api.EndpointResponse)
	go func() { done <- c.put("c1", "late", "10.244.0.9") }()
	time.Sleep(50 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("registration returned before the pod existed")
	default:
	}
	if _, err := c.cs.CoreV1().Pods("default").Create(context.Background(), pod("late", "node-1", "", "late"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-done:
		if _, _, ok := c.dp.endpoint(resp.ID); !ok {
			t.Fatal("registration returned but the endpoint is not installed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("registration did not complete after the pod appeared")
	}
}

// A restarted agent must not look healthy (and its node Ready) before it has
// programmed the datapath from the caches: until then its status lacks
// identities, and nothing it serves describes what is enforced.
func TestHealthyOnlyOnceTheDatapathIsProgrammed(t *testing.T) {
	dp := newFakeDatapath()
	dp.setFailSync(errors.New("ipcache full"))
	c := newClusterWith(t, dp)
	c.eventually("the first regeneration failed", func() bool {
		err := c.d.Healthz(context.Background())
		return err != nil && strings.Contains(err.Error(), "ipcache full")
	})
	if !errors.Is(c.d.Healthz(context.Background()), api.ErrNotReady) {
		t.Fatal("healthz must say not ready while the datapath is not programmed")
	}
	dp.setFailSync(nil)
	c.eventually("healthy after a regeneration succeeds", func() bool { return c.d.Healthz(context.Background()) == nil })
}

// Watch streams are not ordered with respect to each other, so a namespace
// event at 900 says nothing about policies: the policy revision is the
// slowest policy-feeding stream's, and only passes 900 once each of them
// has delivered something at or after it (what the sim runner's markers do).
func TestPolicyRevisionIsTheSlowestStream(t *testing.T) {
	c := newCluster(t, pod("a", "node-1", "", "a"))
	ctx := context.Background()
	meta := func(ns, name, rv string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: rv}
	}
	if _, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: meta("", "marker", "900")}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.eventually("the namespace stream reaches 900", func() bool { return c.d.StreamRevision("namespaces") >= 900 })
	if st := c.d.Status(ctx); st.PolicyRevision >= 900 {
		t.Fatalf("policy revision %d passed 900 before the policy streams did: %+v", st.PolicyRevision, st.Revisions)
	}
	np := &networkingv1.NetworkPolicy{ObjectMeta: meta("default", "marker", "901")}
	if _, err := c.cs.NetworkingV1().NetworkPolicies("default").Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, kind := range []string{"CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"} {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "cilium.io/v2", "kind": kind,
			"metadata": map[string]any{"name": "marker", "resourceVersion": fmt.Sprint(902 + i)},
			"spec":     map[string]any{"endpointSelector": map[string]any{"matchLabels": map[string]any{"none": "none"}}},
		}}
		var err error
		if kind == "CiliumNetworkPolicy" {
			_, err = c.dyn.Resource(k8s.CNPResource).Namespace("default").Create(ctx, u, metav1.CreateOptions{})
		} else {
			_, err = c.dyn.Resource(k8s.CCNPResource).Create(ctx, u, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	c.eventually("the Cilium policy streams reach 903", func() bool { return c.d.StreamRevision(k8s.CCNPResource.Resource) >= 903 })
	group := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cilium.io/v2", "kind": "CiliumCIDRGroup",
		"metadata": map[string]any{"name": "marker", "resourceVersion": "904"},
		"spec":     map[string]any{"externalCIDRs": []any{}},
	}}
	if _, err := c.dyn.Resource(k8s.CIDRGroupResource).Create(ctx, group, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.eventually("the CIDR group stream reaches 904", func() bool { return c.d.StreamRevision(k8s.CIDRGroupResource.Resource) >= 904 })
	if st := c.d.Status(ctx); st.PolicyRevision >= 900 {
		t.Fatalf("policy revision %d passed 900 while the pod stream is at %d", st.PolicyRevision, st.Revisions["pods"])
	}
	p := pod("marker", "", "", "none")
	p.ResourceVersion = "905"
	if _, err := c.cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.eventually("the pod stream reaches 905", func() bool { return c.d.StreamRevision("pods") >= 905 })
	if st := c.d.Status(ctx); st.PolicyRevision >= 900 {
		t.Fatalf("policy revision %d passed 900 while the Secret stream (headerMatches values) is at %d", st.PolicyRevision, st.Revisions["secrets"])
	}
	sec := &corev1.Secret{ObjectMeta: meta("default", "marker", "906")}
	if _, err := c.cs.CoreV1().Secrets("default").Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.eventually("every policy stream has passed 900", func() bool { return c.d.Status(ctx).PolicyRevision == 900 })
}

// A new label set that sorts before the others must not renumber them, nor
// must a restart: a shift would leave ipcache and policy entries disagreeing
// while they are rewritten, under running traffic.
func TestIdentitiesKeepTheirNumbers(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, pod("a", "node-1", "", "m"), pod("z", "node-2", "10.244.1.9", "z"))
	// No device name: a restarted daemon looks devices up by name, and
	// there is no lxcc1 here; by ifindex the fake datapath adopts it.
	resp, err := c.d.PutEndpoint(ctx, api.EndpointRequest{
		ContainerID: "c1", PodNamespace: "default", PodName: "a", HostIfIndex: 42, MAC: testMAC, IPs: []string{"10.244.0.5"},
	})
	if err != nil {
		t.Fatal(err)
	}
	remote := func() uint32 {
		c.dp.mu.Lock()
		defer c.dp.mu.Unlock()
		return c.dp.ipcache[netip.MustParsePrefix("10.244.1.9/32")]
	}
	idZ := remote()
	if idZ == 0 {
		t.Fatal("the remote pod is not in the ipcache")
	}
	if _, err := c.cs.CoreV1().Pods("default").Create(ctx, pod("b", "node-2", "10.244.1.7", "a"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.eventually("the new pod is in the ipcache", func() bool {
		c.dp.mu.Lock()
		defer c.dp.mu.Unlock()
		return c.dp.ipcache[netip.MustParsePrefix("10.244.1.7/32")] != 0
	})
	if ep, _, _ := c.dp.endpoint(resp.ID); ep.Identity != resp.Identity || remote() != idZ {
		t.Fatalf("a label set sorting first renumbered the others: local %d -> %d, remote %d -> %d",
			resp.Identity, ep.Identity, idZ, remote())
	}

	c.restart()
	c.eventually("the restarted daemon is healthy", func() bool { return c.d.Healthz(ctx) == nil })
	st := c.d.Status(ctx)
	if len(st.Endpoints) != 1 || st.Endpoints[0].Identity != resp.Identity || remote() != idZ {
		t.Fatalf("a restart renumbered identities: status %+v, remote %d -> %d", st.Endpoints, idZ, remote())
	}
}

// A CiliumCIDRGroup is watched like a policy: changing its CIDRs moves the
// prefixes a policy referencing it allows, in the ipcache and the policy map.
func TestCIDRGroupChangeRegeneratesThePolicyThatNamesIt(t *testing.T) {
	c := newCluster(t, pod("a", "node-1", "", "a"))
	resp := c.put("c1", "a", "10.244.0.5")
	ctx := context.Background()
	cnp := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
		"metadata": map[string]any{"namespace": "default", "name": "to-group", "resourceVersion": "300"},
		"spec": map[string]any{
			"endpointSelector": map[string]any{"matchLabels": map[string]any{"app": "a"}},
			"egress":           []any{map[string]any{"toCIDRSet": []any{map[string]any{"cidrGroupRef": "partners"}}}},
		},
	}}
	if _, err := c.dyn.Resource(k8s.CNPResource).Namespace("default").Create(ctx, cnp, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	group := func(rv, cidr string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "cilium.io/v2", "kind": "CiliumCIDRGroup",
			"metadata": map[string]any{"name": "partners", "resourceVersion": rv},
			"spec":     map[string]any{"externalCIDRs": []any{cidr}},
		}}
	}
	allowed := func(prefix string) func() bool {
		return func() bool {
			c.dp.mu.Lock()
			id, ok := c.dp.ipcache[netip.MustParsePrefix(prefix)]
			c.dp.mu.Unlock()
			_, entries, _ := c.dp.endpoint(resp.ID)
			return ok && hasEntry(entries, datapath.PolicyEntry{Identity: id, Direction: datapath.Egress, Action: datapath.PolicyAllow})
		}
	}
	c.eventually("the policy is in force", func() bool {
		ep, _, _ := c.dp.endpoint(resp.ID)
		return ep.EgressEnforced
	})
	if allowed("192.0.2.0/24")() {
		t.Fatal("a prefix is allowed before its group exists")
	}
	if _, err := c.dyn.Resource(k8s.CIDRGroupResource).Create(ctx, group("301", "192.0.2.0/24"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.eventually("the group's prefix is allowed", allowed("192.0.2.0/24"))
	if _, err := c.dyn.Resource(k8s.CIDRGroupResource).Update(ctx, group("302", "198.51.100.0/24"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.eventually("the new prefix is allowed", allowed("198.51.100.0/24"))
	if allowed("192.0.2.0/24")() {
		t.Fatal("the prefix the group dropped is still allowed")
	}
}
