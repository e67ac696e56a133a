package policy

import (
	"net/netip"
	"testing"
)

const fqdnPolicy = cnpHeader + `spec:
  endpointSelector: {matchLabels: {app: a}}
  egress:
    - toPorts:
        - ports: [{port: "53", protocol: ANY}]
          rules: {dns: [{matchPattern: "*.one.one"}, {matchName: one.one.one.one}]}
    - toFQDNs: [{matchName: one.one.one.one}]
      toPorts: [{ports: [{port: "443", protocol: TCP}]}]
`

// toFQDNs selects the addresses answered for the names it matches, each a
// host prefix with its own identity; before any answer it selects nobody
// (the rule is not a wildcard). DNS rules land in the redirected entry.
func TestToFQDNsSelectsAnsweredAddresses(t *testing.T) {
	ip := netip.MustParseAddr("203.0.113.11")
	before := resolveYAML(t, fqdnPolicy)
	pol := before.Endpoints["x/a"].Policy
	_, e, ok := pol.Lookup(Egress, 0, ProtoUDP, 53)
	if !ok || e.ProxyPort != ProxyPortDNSEgress || len(e.DNS) != 2 {
		t.Fatalf("egress 53/UDP: entry %+v, want the DNS egress port with both selectors", e)
	}
	for k := range pol.Entries {
		if k.Direction == Egress && k.PortLo == 443 {
			t.Fatalf("toFQDNs with no answer put key %v", k)
		}
	}

	after := resolveInput(t, fqdnPolicy, Input{EnforceLocalhost: true, FQDNs: map[string][]netip.Addr{
		"one.one.one.one.":   {ip},
		"other.example.com.": {netip.MustParseAddr("203.0.113.99")},
	}})
	var id uint32
	for _, c := range after.IPCache {
		if c.Prefix == netip.PrefixFrom(ip, 32) {
			id = uint32(c.Identity)
		}
		if c.Prefix.Addr() == netip.MustParseAddr("203.0.113.99") {
			t.Fatalf("an answer no toFQDNs selects got an ipcache entry: %v", c)
		}
	}
	if id == 0 {
		t.Fatalf("no ipcache entry for the answered %s: %v", ip, after.IPCache)
	}
	_, e, ok = after.Endpoints["x/a"].Policy.Lookup(Egress, id, ProtoTCP, 443)
	if !ok || e.Deny || e.ProxyPort != 0 {
		t.Fatalf("egress to %s:443 (identity %d): entry %+v found %v, want allowed", ip, id, e, ok)
	}
	if _, _, ok = after.Endpoints["x/a"].Policy.Lookup(Egress, id, ProtoTCP, 80); ok {
		t.Fatal("toFQDNs allowed a port its toPorts does not name")
	}
}

// An address toFQDNs selects carries, next to its cidr: label, the fqdn:
// label of every selector that selects it (one address, two selectors:
// both labels); an address that is also a toCIDR prefix keeps one identity
// with all of them.
func TestToFQDNsAddressesCarryTheirSelectorsLabels(t *testing.T) {
	one, other := netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("1.0.0.1")
	res := resolveInput(t, cnpHeader+`spec:
  endpointSelector: {matchLabels: {app: a}}
  egress:
    - toFQDNs: [{matchName: ONE.one.one.one.}, {matchPattern: "*.one.one.one"}]
    - toFQDNs: [{matchPattern: "*.example.com"}]
    - toCIDR: [1.0.0.1/32]
`, Input{EnforceLocalhost: true, FQDNs: map[string][]netip.Addr{
		"one.one.one.one.": {one},
		"a.example.com.":   {other},
	}})
	labelsOf := func(a netip.Addr) string {
		for _, c := range res.IPCache {
			if c.Prefix == netip.PrefixFrom(a, 32) {
				ls, _ := res.Identities.Labels(c.Identity)
				return ls.String()
			}
		}
		return "(no ipcache entry)"
	}
	if got, want := labelsOf(one), "cidr:1.1.1.1/32,fqdn:*.one.one.one,fqdn:one.one.one.one,reserved:world-ipv4"; got != want {
		t.Errorf("1.1.1.1 labels %q, want %q", got, want)
	}
	if got, want := labelsOf(other), "cidr:1.0.0.1/32,fqdn:*.example.com,reserved:world-ipv4"; got != want {
		t.Errorf("1.0.0.1 (toCIDR and toFQDNs) labels %q, want %q", got, want)
	}
}
