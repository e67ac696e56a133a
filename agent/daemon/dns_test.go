package daemon

import (
	"context"
	"net/netip"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kestrelnet/kestrel/agent/k8s"
	dnsproxy "github.com/kestrelnet/kestrel/agent/proxy/dns"
	"github.com/kestrelnet/kestrel/datapath"
)

// An answer the DNS proxy learns is in the ipcache and the policy maps when
// learnFQDNs returns (the proxy releases the answer only then), and leaves
// both when its TTL runs out.
func TestToFQDNsAllowedBeforeTheAnswerIsReleased(t *testing.T) {
	c := newCluster(t, pod("a", "node-1", "", "a"))
	resp := c.put("c1", "a", "10.244.0.5")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
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
	ip := netip.MustParseAddr("203.0.113.7")
	allowed := func() bool {
		c.dp.mu.Lock()
		id, ok := c.dp.ipcache[netip.PrefixFrom(ip, 32)]
		c.dp.mu.Unlock()
		_, entries, _ := c.dp.endpoint(resp.ID)
		return ok && hasEntry(entries, datapath.PolicyEntry{Identity: id, Direction: datapath.Egress, Action: datapath.PolicyAllow})
	}
	c.eventually("the policy is in force", func() bool {
		ep, _, _ := c.dp.endpoint(resp.ID)
		return ep.EgressEnforced
	})
	if allowed() {
		t.Fatal("the name's address is allowed before any answer")
	}
	go c.d.expireFQDNs(ctx)
	err := c.d.learnFQDNs(resp.ID, []dnsproxy.Answer{
		{Name: "one.one.one.one.", IPs: []netip.Addr{ip}, TTL: 1},
		{Name: "other.example.com.", IPs: []netip.Addr{netip.MustParseAddr("203.0.113.8")}, TTL: 60},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !allowed() {
		t.Fatal("learnFQDNs returned before the answered address was allowed")
	}
	cache := c.d.FQDNCache()
	if len(cache.Entries) != 2 || cache.Entries[0].Name != "one.one.one.one." || cache.Entries[0].Identity == 0 || cache.Entries[1].Identity != 0 {
		t.Fatalf("fqdn cache %+v: want both names, an identity only for the selected one", cache)
	}
	c.eventually("the address expires with its TTL", func() bool { return !allowed() })
	c.dp.mu.Lock()
	_, left := c.dp.ipcache[netip.PrefixFrom(ip, 32)]
	c.dp.mu.Unlock()
	if left {
		t.Fatal("the expired address kept its ipcache entry")
	}
}
