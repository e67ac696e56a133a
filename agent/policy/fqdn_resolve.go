package policy

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/kestrelnet/kestrel/agent/fqdn"
	"github.com/kestrelnet/kestrel/agent/identity"
)

// toFQDNs selectors select the addresses the DNS proxy saw answered for the
// names they match (Input.FQDNs). Each address is a host prefix with a
// CIDR identity of its own, in the ipcache like a toCIDR prefix, so an
// address nobody resolved through the proxy stays world and is denied.

// fqdnAddrs returns the answered addresses sels select, sorted, distinct.
func fqdnAddrs(sels []FQDNSelector, names map[string][]netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, s := range sels {
		m, err := fqdn.NewSelector(s.MatchName, s.MatchPattern)
		if err != nil {
			continue // refused by validation; selects nothing
		}
		for name, ips := range names {
			if m.Match(name) {
				out = append(out, ips...)
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// fqdnSelectors returns every toFQDNs selector of pols.
func fqdnSelectors(pols []Object) []FQDNSelector {
	var sels []FQDNSelector
	for i := range pols {
		if pols[i].Cilium == nil {
			continue
		}
		for _, r := range pols[i].Cilium.Rules() {
			for _, e := range r.Egress {
				sels = append(sels, e.ToFQDNs...)
			}
		}
	}
	return sels
}

// fqdnPrefixes returns the host prefixes of every address a toFQDNs
// selector of pols selects.
func fqdnPrefixes(pols []Object, names map[string][]netip.Addr) []netip.Prefix {
	if len(names) == 0 {
		return nil
	}
	var out []netip.Prefix
	for _, a := range fqdnAddrs(fqdnSelectors(pols), names) {
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out
}

// fqdnLabels returns, for every address a toFQDNs selector of pols
// selects, the fqdn:<selector> label of each selector that selects it, as
// Cilium labels such addresses (fqdn:one.one.one.one, fqdn:*.example.com),
// so `kestrel identity list` and flows say why an address is a peer.
func fqdnLabels(pols []Object, names map[string][]netip.Addr) map[netip.Prefix][]identity.Label {
	if len(names) == 0 {
		return nil
	}
	out := map[netip.Prefix][]identity.Label{}
	for _, s := range fqdnSelectors(pols) {
		l := identity.Label{Source: identity.SourceFQDN, Key: fqdnSelectorLabel(s)}
		for _, a := range fqdnAddrs([]FQDNSelector{s}, names) {
			p := netip.PrefixFrom(a, a.BitLen())
			out[p] = append(out[p], l)
		}
	}
	return out
}

// fqdnSelectorLabel is a selector's label key: its name or pattern in lower
// case without the root's trailing dot, so "one.one.one.one" and
// "ONE.one.one.one." (the same name) label alike.
func fqdnSelectorLabel(s FQDNSelector) string {
	v := s.MatchName
	if v == "" {
		v = s.MatchPattern
	}
	if v != "." {
		v = strings.TrimSuffix(v, ".")
	}
	return strings.ToLower(v)
}

// fqdnPeers adds the addresses sels select to an egress rule's CIDR peers.
// A rule with toFQDNs names its peers even when nothing is answered yet: it
// then selects nobody (not every peer).
func (c *cluster) fqdnPeers(ps peerSpec, sels []FQDNSelector) peerSpec {
	if len(sels) == 0 {
		return ps
	}
	ps.Present = true
	for _, a := range fqdnAddrs(sels, c.fqdns) {
		ps.CIDRs = append(ps.CIDRs, netip.PrefixFrom(a, a.BitLen()).String())
	}
	return ps
}
