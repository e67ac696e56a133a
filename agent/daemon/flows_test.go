package daemon

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/agent/policy"
	httpproxy "github.com/kestrelnet/kestrel/agent/proxy/http"
	"github.com/kestrelnet/kestrel/datapath"
)

func TestFlowRingKeepsTheNewestInOrderAndCountsTheLost(t *testing.T) {
	var r flowRing
	if got := r.since(0); len(got.Flows) != 0 || got.Next != 0 {
		t.Fatalf("empty ring: %+v", got)
	}
	total := uint64(FlowCapacity + 10)
	for i := uint64(1); i <= total; i++ {
		r.add(api.Flow{TimeNs: i})
	}
	got := r.since(0)
	if len(got.Flows) != FlowCapacity || got.Lost != 10 || got.Next != total {
		t.Fatalf("from 0: %d flows, lost %d, next %d; want %d, 10, %d", len(got.Flows), got.Lost, got.Next, FlowCapacity, total)
	}
	for i, f := range got.Flows {
		if want := uint64(11 + i); f.Seq != want || f.TimeNs != want {
			t.Fatalf("flow %d: seq %d time %d, want %d", i, f.Seq, f.TimeNs, want)
		}
	}
	got = r.since(total - 3)
	if len(got.Flows) != 3 || got.Lost != 0 || got.Flows[0].Seq != total-2 {
		t.Fatalf("from %d: %+v", total-3, got)
	}
	if got := r.since(total); len(got.Flows) != 0 || got.Next != total {
		t.Fatalf("caught up: %+v", got)
	}
}

// An L7 proxy's decision becomes a flow with its HTTP fields: a denied
// request is a drop by policy, an allowed one forwarded with the server's
// status; the endpoint, identities and policies come from the connection.
func TestProxyDecisionsBecomeL7Flows(t *testing.T) {
	d := &Daemon{cfg: Config{Node: "node-1"}}
	conn := &httpproxy.Connection{EndpointID: 3, SrcIdentity: 300, DstIdentity: 301, Policies: []string{"CiliumNetworkPolicy/x/rule1"}}
	client, server := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
	d.recordL7(httpproxy.Record{Direction: policy.Ingress, Client: client, Server: server, Conn: conn,
		Method: "GET", URL: "10.0.0.2:80/private", Protocol: "HTTP/1.1", Status: 403, Latency: time.Millisecond})
	d.recordL7(httpproxy.Record{Direction: policy.Ingress, Client: client, Server: server, Conn: conn,
		Method: "GET", URL: "10.0.0.2:80/public", Protocol: "HTTP/1.1", Allowed: true, Status: 200})
	got := d.Flows(0).Flows
	if len(got) != 2 {
		t.Fatalf("%d flows, want 2", len(got))
	}
	denied, allowed := got[0], got[1]
	if denied.Verdict != "dropped" || denied.Reason != "POLICY_DENIED" || denied.L7 == nil || denied.L7.HTTP.Code != 403 ||
		denied.L7.HTTP.URL != "10.0.0.2:80/private" || denied.L7.LatencyNs != uint64(time.Millisecond) ||
		denied.Src != "10.0.0.1" || denied.DstPort != 80 || denied.Direction != "ingress" || denied.EndpointID != 3 ||
		denied.SrcIdentity != 300 || len(denied.Policies) != 1 || denied.CT != "l7" || denied.TimeNs == 0 {
		t.Fatalf("denied request's flow: %+v %+v", denied, denied.L7)
	}
	if allowed.Verdict != "forwarded" || allowed.Reason != "" || allowed.L7.HTTP.Code != 200 || allowed.L7.HTTP.Method != "GET" {
		t.Fatalf("allowed request's flow: %+v %+v", allowed, allowed.L7)
	}
}

// A flow read after a regeneration names the pods at both ends and their
// identities' labels, and carries a wall-clock time.
func TestRecordedFlowsNameThePods(t *testing.T) {
	c := newCluster(t, pod("a", "node-1", "", "a"), pod("b", "node-2", "10.244.1.5", "b"))
	resp := c.put("c1", "a", "10.244.0.5")
	var idB uint32
	c.eventually("b is in the ipcache", func() bool {
		c.dp.mu.Lock()
		defer c.dp.mu.Unlock()
		idB = c.dp.ipcache[netip.MustParsePrefix("10.244.1.5/32")]
		return idB != 0
	})
	var mono unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
		t.Fatal(err)
	}
	c.d.RecordFlow(datapath.Event{
		Time: time.Duration(mono.Nano()), Src: netip.MustParseAddr("10.244.1.5"), Dst: netip.MustParseAddr("10.244.0.5"),
		SrcPort: 40000, DstPort: 80, Protocol: 6, TCPFlags: 0x02, Direction: datapath.Ingress,
		Verdict: datapath.VerdictDropped, Reason: 1, EndpointID: resp.ID, SrcIdentity: idB, DstIdentity: resp.Identity,
	})
	got, _ := c.d.FlowsAfter(0)
	if len(got.Flows) != 1 {
		t.Fatalf("%d flows", len(got.Flows))
	}
	f := got.Flows[0]
	if f.SrcPeer.Namespace != "default" || f.SrcPeer.Pod != "b" || f.DstPeer.Pod != "a" {
		t.Errorf("peers %+v -> %+v, want default/b -> default/a", f.SrcPeer, f.DstPeer)
	}
	if !slices.Contains(f.SrcPeer.Labels, "k8s:app=b") || !slices.Contains(f.DstPeer.Labels, "k8s:app=a") {
		t.Errorf("labels %v -> %v lack the pods' app labels", f.SrcPeer.Labels, f.DstPeer.Labels)
	}
	if d := time.Since(time.Unix(0, f.TimeUnixNs)); d < 0 || d > time.Minute {
		t.Errorf("wall time %v is %v from now", time.Unix(0, f.TimeUnixNs), d)
	}
	if f.Reason != "POLICY_DENIED" || f.ReasonCode != 1 || f.TCPFlags != 0x02 {
		t.Errorf("reason %q (%d), flags %#x", f.Reason, f.ReasonCode, f.TCPFlags)
	}
}

func TestWorkloadOfNamesTheController(t *testing.T) {
	yes := true
	owned := func(kind, name string, labels map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{Kind: "Node", Name: "n"}, {Kind: kind, Name: name, Controller: &yes}}}}
	}
	for _, c := range []struct {
		pod  *corev1.Pod
		want string
	}{
		{owned("ReplicaSet", "web-5d8f7c9b6", map[string]string{"pod-template-hash": "5d8f7c9b6"}), "Deployment/web"},
		{owned("ReplicaSet", "bare-rs", nil), "ReplicaSet/bare-rs"},
		{owned("StatefulSet", "db", nil), "StatefulSet/db"},
		{&corev1.Pod{}, ""},
	} {
		if got := workloadOf(c.pod); got != c.want {
			t.Errorf("owners %v: workload %q, want %q", c.pod.OwnerReferences, got, c.want)
		}
	}
}

// A POLICY_DENIED drop names the policy that isolates the endpoint in the
// drop's direction, and only in that direction.
func TestDefaultDenyDropNamesTheIsolatingPolicy(t *testing.T) {
	c := newCluster(t, pod("a", "node-1", "", "a"))
	resp := c.put("c1", "a", "10.244.0.5")
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "deny-in", ResourceVersion: "100"},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{}},
	}
	if _, err := c.cs.NetworkingV1().NetworkPolicies("default").Create(context.Background(), np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.eventually("the policy is in force", func() bool { return c.d.StreamRevision("networkpolicies") >= 100 })
	for _, dir := range []datapath.Direction{datapath.Ingress, datapath.Egress} {
		c.d.RecordFlow(datapath.Event{Src: netip.MustParseAddr("10.244.1.5"), Dst: netip.MustParseAddr("10.244.0.5"),
			Protocol: 6, Direction: dir, Verdict: datapath.VerdictDropped, Reason: 1, EndpointID: resp.ID})
	}
	got, _ := c.d.FlowsAfter(0)
	if len(got.Flows) != 2 {
		t.Fatalf("%d flows", len(got.Flows))
	}
	if in := got.Flows[0].EnforcedBy; len(in) != 1 || in[0] != "NetworkPolicy/default/deny-in" {
		t.Errorf("ingress drop enforced by %v, want NetworkPolicy/default/deny-in", in)
	}
	if eg := got.Flows[1].EnforcedBy; len(eg) != 0 {
		t.Errorf("egress is not isolated, yet its drop names %v", eg)
	}
}
