package daemon

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/agent/fqdn"
	"github.com/kestrelnet/kestrel/agent/k8s"
	dnsproxy "github.com/kestrelnet/kestrel/agent/proxy/dns"
	"github.com/kestrelnet/kestrel/datapath"
)

// A restarted agent selects what pods resolved before the restart from its
// first regeneration on: no ipcache it writes lacks the answered address
// (an established connection to it keeps working), the address keeps its
// identity, `kestrel fqdn cache list` (FQDNCache) shows it, and it still
// expires when its TTL, counted from the lookup before the restart, runs out.
func TestToFQDNsCacheSurvivesAnAgentRestart(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, pod("a", "node-1", "", "a"))
	// No device name: the restarted daemon adopts the endpoint by ifindex
	// (there is no lxcc1 here), as in TestIdentitiesKeepTheirNumbers.
	resp, err := c.d.PutEndpoint(ctx, api.EndpointRequest{
		ContainerID: "c1", PodNamespace: "default", PodName: "a", HostIfIndex: 42, MAC: testMAC, IPs: []string{"10.244.0.5"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cnp := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
		"metadata": map[string]any{"namespace": "default", "name": "to-fqdn", "resourceVersion": "300"},
		"spec": map[string]any{
			"endpointSelector": map[string]any{"matchLabels": map[string]any{"app": "a"}},
			"egress":           []any{map[string]any{"toFQDNs": []any{map[string]any{"matchName": "one.one.one.one"}}}},
		},
	}}
	if _, err := c.dyn.Resource(k8s.CNPResource).Namespace("default").Create(ctx, cnp, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.eventually("the policy is in force", func() bool {
		ep, _, _ := c.dp.endpoint(resp.ID)
		return ep.EgressEnforced
	})
	ip := netip.MustParseAddr("1.1.1.1")
	host := netip.PrefixFrom(ip, 32)
	const ttl = 4
	if err := c.d.learnFQDNs(resp.ID, []dnsproxy.Answer{{Name: "one.one.one.one.", IPs: []netip.Addr{ip}, TTL: ttl}}); err != nil {
		t.Fatal(err)
	}
	before := c.d.FQDNCache()
	if len(before.Entries) != 1 || before.Entries[0].Identity == 0 {
		t.Fatalf("fqdn cache before the restart: %+v", before)
	}
	id, expires := before.Entries[0].Identity, before.Entries[0].Expires
	if _, err := os.Stat(c.d.cfg.FQDNCachePath); err != nil {
		t.Fatalf("the cache was not saved in the state directory: %v", err)
	}

	// From here on, every ipcache written either holds the address with
	// its identity or comes after its expiry.
	var lackedAt time.Time
	var early []string
	c.dp.mu.Lock()
	c.dp.onIPCache = func(m map[netip.Prefix]uint32) {
		got, ok := m[host]
		switch {
		case ok && got == id:
		case ok:
			early = append(early, "renumbered")
		case time.Now().Before(expires):
			early = append(early, "lacked the address at "+time.Now().Format(time.StampMilli))
		case lackedAt.IsZero():
			lackedAt = time.Now()
		}
	}
	c.dp.mu.Unlock()

	c.restart()
	c.eventually("the restarted daemon is healthy", func() bool { return c.d.Healthz(ctx) == nil })
	after := c.d.FQDNCache()
	if len(after.Entries) != 1 || after.Entries[0].IP != "1.1.1.1" || after.Entries[0].Identity != id || !after.Entries[0].Expires.Equal(expires) {
		t.Fatalf("fqdn cache after the restart: %+v; want 1.1.1.1 with identity %d, expiring at %v", after, id, expires)
	}
	// The address's identity is labelled by the selector that selected it,
	// over the agent's API (`kestrel identity list`) and in flows' peers.
	socket := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := api.Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan struct{})
	go func() { api.Serve(sctx, ln, c.d, c.log); close(served) }()
	defer func() { stop(); <-served }()
	ids, err := api.NewClient(socket).Identities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"cidr:1.1.1.1/32", "fqdn:one.one.one.one", "reserved:world-ipv4"}
	found := false
	for _, i := range ids {
		if i.ID == id {
			found = slices.Equal(i.Labels, want)
			if !found {
				t.Fatalf("identity %d labels %v, want %v", id, i.Labels, want)
			}
		}
	}
	if !found {
		t.Fatalf("identity %d is not listed: %+v", id, ids)
	}
	if got := c.d.peers.Load().peer(ip, id).Labels; !slices.Equal(got, want) {
		t.Fatalf("a flow's peer 1.1.1.1 has labels %v, want %v", got, want)
	}
	_, entries, _ := c.dp.endpoint(resp.ID)
	if !hasEntry(entries, datapath.PolicyEntry{Identity: id, Direction: datapath.Egress, Action: datapath.PolicyAllow}) {
		t.Fatal("the restarted agent's policy does not allow the restored address")
	}
	c.eventually("the restored address expires", func() bool {
		c.dp.mu.Lock()
		defer c.dp.mu.Unlock()
		return !lackedAt.IsZero()
	})
	c.dp.mu.Lock()
	defer c.dp.mu.Unlock()
	if len(early) > 0 {
		t.Fatalf("an ipcache written before the address's expiry (%v) did not hold it: %v", expires.Format(time.StampMilli), early)
	}
	if late := lackedAt.Sub(expires); late > 2500*time.Millisecond {
		t.Fatalf("the restored address left %v after its expiry", late)
	}
	if n := len(c.d.fqdns.List()); n != 0 {
		t.Fatalf("%d entries left after expiry", n)
	}
}

// A pod that goes takes its lookups with it: the addresses only it
// resolved stop being selected, now and after a restart.
func TestRemovedEndpointTakesItsLookups(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, pod("a", "node-1", "", "a"))
	resp := c.put("c1", "a", "10.244.0.5")
	if err := c.d.learnFQDNs(resp.ID, []dnsproxy.Answer{{Name: "one.one.one.one.", IPs: []netip.Addr{netip.MustParseAddr("1.1.1.1")}, TTL: 600}}); err != nil {
		t.Fatal(err)
	}
	if err := c.d.DeleteEndpoint(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if got := c.d.FQDNCache().Entries; len(got) != 0 {
		t.Fatalf("a removed endpoint's lookups stayed: %+v", got)
	}
	c.restart()
	if got := c.d.FQDNCache().Entries; len(got) != 0 {
		t.Fatalf("a removed endpoint's lookups came back after a restart: %+v", got)
	}
}

// A new address is saved before learnFQDNs returns; a refreshed TTL (no new
// address, no regeneration) is saved by the next expiry tick, so a restart
// a moment later keeps the longer expiry without a file write per answer.
func TestRefreshedTTLIsSaved(t *testing.T) {
	c := newCluster(t, pod("a", "node-1", "", "a"))
	resp := c.put("c1", "a", "10.244.0.5")
	ip := netip.MustParseAddr("1.1.1.1")
	saved := func() time.Time {
		var f fqdn.Cache
		if _, err := f.Load(c.d.cfg.FQDNCachePath, nil); err != nil {
			t.Fatal(err)
		}
		for _, e := range f.List() {
			if e.IP == ip {
				return e.Expires
			}
		}
		return time.Time{}
	}
	if err := c.d.learnFQDNs(resp.ID, []dnsproxy.Answer{{Name: "one.one.one.one.", IPs: []netip.Addr{ip}, TTL: 60}}); err != nil {
		t.Fatal(err)
	}
	first := saved()
	if first.IsZero() {
		t.Fatal("a new address was not saved before learnFQDNs returned")
	}
	if err := c.d.learnFQDNs(resp.ID, []dnsproxy.Answer{{Name: "one.one.one.one.", IPs: []netip.Addr{ip}, TTL: 600}}); err != nil {
		t.Fatal(err)
	}
	c.eventually("the refreshed expiry is saved", func() bool { return saved().Sub(first) > 500*time.Second })
}
