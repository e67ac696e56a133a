package policy

import (
	"fmt"
	"io"
	"strings"

	"github.com/kestrelnet/kestrel/agent/identity"
)

// shortIdentity names an identity in one short word: "any", "2 world",
// "16777217 cidr:10.0.0.0/8", or "256 ns/pod(+2)" naming its pods.
func (r *Result) shortIdentity(id identity.NumericIdentity) string {
	if id == 0 {
		return "any"
	}
	if n := identity.ReservedName(id); n != "" {
		return fmt.Sprintf("%d %s", id, n)
	}
	ls, _ := r.Identities.Labels(id)
	if id.IsLocal() && len(ls) > 0 {
		return fmt.Sprintf("%d %s", id, ls[0])
	}
	var pods []string
	for _, k := range r.EndpointKeys() {
		if r.Endpoints[k].Identity == id {
			pods = append(pods, k)
		}
	}
	if len(pods) == 0 {
		return fmt.Sprint(id)
	}
	if len(pods) > 1 {
		return fmt.Sprintf("%d %s(+%d)", id, pods[0], len(pods)-1)
	}
	return fmt.Sprintf("%d %s", id, pods[0])
}

// protoName names a key protocol for people.
func protoName(p uint8) string {
	switch p {
	case ProtoAny:
		return "any"
	case ProtoTCP:
		return "TCP"
	case ProtoUDP:
		return "UDP"
	case ProtoSCTP:
		return "SCTP"
	case ProtoICMP:
		return "ICMP"
	case ProtoICMPv6:
		return "ICMPv6"
	case ProtoVRRP:
		return "VRRP"
	case ProtoIGMP:
		return "IGMP"
	}
	return fmt.Sprint(p)
}

// Explain writes one endpoint's identity, enforcement and map state, one
// line per key, in a stable order.
func (r *Result) Explain(w io.Writer, key string) error {
	ep, ok := r.Endpoints[key]
	if !ok {
		return fmt.Errorf("no pod %s in the cluster description (known: %s)", key, strings.Join(r.EndpointKeys(), ", "))
	}
	fmt.Fprintf(w, "endpoint %s\n", ep.Key)
	fmt.Fprintf(w, "  identity %d\n", ep.Identity)
	for _, l := range ep.Labels {
		fmt.Fprintf(w, "    %s\n", l)
	}
	for _, d := range []Direction{Ingress, Egress} {
		state := "not enforced (allow all)"
		if ep.Policy.Enforced(d) {
			state = "enforced (default deny)"
		}
		fmt.Fprintf(w, "  %s: %s\n", d, state)
	}
	keys := ep.Policy.SortedKeys()
	fmt.Fprintf(w, "  map state (%d keys):\n", len(keys))
	for _, k := range keys {
		e := ep.Policy.Entries[k]
		verdict := "allow"
		switch {
		case e.Deny:
			verdict = "deny"
		case e.ProxyPort != 0:
			verdict = fmt.Sprintf("redirect:%d", e.ProxyPort)
		}
		port := "any"
		if k.Protocol != ProtoAny && !k.AnyPort {
			port = fmt.Sprint(k.PortLo)
			if k.PortHi > k.PortLo {
				port = fmt.Sprintf("%d-%d", k.PortLo, k.PortHi)
			}
			if k.Protocol == ProtoICMP || k.Protocol == ProtoICMPv6 {
				port = "type " + port
			}
		} else if k.Protocol == ProtoICMP || k.Protocol == ProtoICMPv6 {
			port = "any type"
		}
		origins := make([]string, len(e.Origins))
		for i, o := range e.Origins {
			origins[i] = o.String()
		}
		fmt.Fprintf(w, "    %-7s %-32s %-6s %-11s %-14s %s\n", k.Direction, r.shortIdentity(k.Identity),
			protoName(k.Protocol), port, verdict, strings.Join(origins, ","))
	}
	var referenced []identity.NumericIdentity
	seen := map[identity.NumericIdentity]bool{}
	for _, k := range keys {
		if k.Identity != 0 && !k.Identity.IsReserved() && !seen[k.Identity] {
			seen[k.Identity] = true
			referenced = append(referenced, k.Identity)
		}
	}
	if len(referenced) > 0 {
		fmt.Fprintln(w, "  remote identities:")
		for _, id := range referenced {
			fmt.Fprintf(w, "    %s\n", r.DescribeIdentity(id))
		}
	}
	if len(ep.Notes) > 0 {
		fmt.Fprintln(w, "  notes:")
		for _, n := range ep.Notes {
			fmt.Fprintf(w, "    %s\n", n)
		}
	}
	return nil
}
