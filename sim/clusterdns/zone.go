// Package clusterdns is the cluster DNS of scenarios, in unit and sim mode:
// it answers Service names (NAME.NS.svc.cluster.local: the cluster IPs, a
// headless Service's ready pod addresses, an ExternalName's CNAME) and the
// records a scenario declares (spec.dns.records). Unit mode asks it
// in-process; in sim mode the server pod's workload serves it (Serve).
package clusterdns

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/kestrelnet/kestrel/agent/fqdn"
)

// Domain is the cluster's DNS domain.
const Domain = "cluster.local."

// TTL is the TTL of every answer, CoreDNS's default for the kubernetes
// plugin.
const TTL = 30

// Zone is what the cluster DNS answers.
type Zone struct {
	addrs  map[string][]netip.Addr // absolute name -> addresses
	cnames map[string]string       // absolute name -> absolute target
}

// NewZone builds the zone from the scenario's records and the cluster's
// Services and EndpointSlices.
func NewZone(records map[string][]netip.Addr, svcs []*corev1.Service, slices []*discoveryv1.EndpointSlice) *Zone {
	z := &Zone{addrs: map[string][]netip.Addr{}, cnames: map[string]string{}}
	for name, ips := range records {
		z.add(fqdn.Canonical(name), ips...)
	}
	for _, s := range svcs {
		name := fqdn.Canonical(s.Name + "." + s.Namespace + ".svc." + Domain)
		switch {
		case s.Spec.Type == corev1.ServiceTypeExternalName:
			z.cnames[name] = fqdn.Canonical(s.Spec.ExternalName)
		case s.Spec.ClusterIP == corev1.ClusterIPNone:
			for _, sl := range slices {
				if sl.Namespace != s.Namespace || sl.Labels[discoveryv1.LabelServiceName] != s.Name {
					continue
				}
				for _, ep := range sl.Endpoints {
					if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
						continue
					}
					for _, a := range ep.Addresses {
						if ip, err := netip.ParseAddr(a); err == nil {
							z.add(name, ip)
						}
					}
				}
			}
		default:
			for _, c := range append([]string{s.Spec.ClusterIP}, s.Spec.ClusterIPs...) {
				if ip, err := netip.ParseAddr(c); err == nil {
					z.add(name, ip)
				}
			}
		}
	}
	return z
}

func (z *Zone) add(name string, ips ...netip.Addr) {
	for _, ip := range ips {
		ip = ip.Unmap()
		if !slices.Contains(z.addrs[name], ip) {
			z.addrs[name] = append(z.addrs[name], ip)
		}
	}
}

// Lookup returns the addresses of name of one family (A: IPv4, AAAA: IPv6),
// following CNAMEs the zone holds, and the CNAME records on the way.
func (z *Zone) Lookup(name string, qtype uint16) ([]netip.Addr, []dns.RR, bool) {
	name = fqdn.Canonical(name)
	var chain []dns.RR
	for range 8 {
		target, ok := z.cnames[name]
		if !ok {
			break
		}
		chain = append(chain, &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: TTL}, Target: target})
		name = target
	}
	all, known := z.addrs[name]
	var out []netip.Addr
	for _, a := range all {
		if (qtype == dns.TypeA) == a.Is4() {
			out = append(out, a)
		}
	}
	return out, chain, known || len(chain) > 0
}

// Answer answers one query: the addresses (and CNAMEs) of its question,
// NOERROR with no records for a known name without that family, NXDOMAIN
// for a name the zone does not hold.
func (z *Zone) Answer(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	q := req.Question[0]
	ips, chain, known := z.Lookup(q.Name, q.Qtype)
	if !known {
		m.Rcode = dns.RcodeNameError
		return m
	}
	m.Answer = append(m.Answer, chain...)
	owner := q.Name
	if n := len(chain); n > 0 {
		owner = chain[n-1].(*dns.CNAME).Target
	}
	for _, ip := range ips {
		hdr := dns.RR_Header{Name: owner, Class: dns.ClassINET, Ttl: TTL}
		if ip.Is4() {
			hdr.Rrtype = dns.TypeA
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: ip.AsSlice()})
		} else if q.Qtype == dns.TypeAAAA {
			hdr.Rrtype = dns.TypeAAAA
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: ip.AsSlice()})
		}
	}
	return m
}

// IsClusterName reports whether name is in the cluster's domain.
func IsClusterName(name string) bool {
	return strings.HasSuffix(fqdn.Canonical(name), "."+Domain)
}
