package format

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/kestrelnet/kestrel/agent/fqdn"
)

// ClusterDNS is spec.dns: the cluster DNS server pod (which pods resolve
// through; labelled k8s-app: kube-dns in kube-system behind the kube-dns
// Service, and added to the pods unless spec.pods declares it) and the
// names it answers besides the cluster's Services.
type ClusterDNS struct {
	Server  string              `yaml:"server"` // namespace/name
	Records map[string][]string `yaml:"records"`
	Line    int                 `yaml:"-"`
}

// DNSQuery is the query of an `exchange: request` probe, sent to the
// cluster DNS (or the probe's to).
type DNSQuery struct {
	Query string `yaml:"query"`
	Type  string `yaml:"type"` // A (default) or AAAA
}

// DNSQueryTypes are the query types a probe may ask.
var DNSQueryTypes = []string{"A", "AAAA"}

// KubeDNSLabel is the label Cilium's policies select the cluster DNS by.
const KubeDNSLabel = "k8s-app"

func (v *validator) clusterDNS(s *Scenario) {
	d := s.Spec.DNS
	if d == nil {
		return
	}
	d.Line = v.line("spec.dns")
	if ns, name, ok := strings.Cut(d.Server, "/"); !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		v.at(d.Line, "spec.dns.server", "the server pod is written namespace/name, got %q", d.Server)
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range d.Records {
			if !yield(k) {
				return
			}
		}
	}) {
		p := "spec.dns.records." + name
		if err := fqdn.ValidateName(name); err != nil {
			v.at(v.line(p), p, "%v", err)
		}
		if len(d.Records[name]) == 0 {
			v.at(v.line(p), p, "a record needs addresses")
		}
		for i, ip := range d.Records[name] {
			if _, err := netip.ParseAddr(ip); err != nil {
				v.at(v.line(fmt.Sprintf("%s[%d]", p, i)), p, "%q is not an IP address", ip)
			}
		}
	}
}

// dnsProbe validates a probe's dns request and fills in its defaults: UDP,
// port 53, type A, the cluster DNS as the target.
func (v *validator) dnsProbe(p *Probe, path string, bad func(string, ...any)) {
	if p.DNS == nil {
		if len(p.Expect.Answer) > 0 {
			bad("expect.answer goes with a dns request")
		}
		return
	}
	if p.Exchange != "request" {
		bad("dns is given only with exchange: request")
	}
	if p.HTTP != nil || p.GRPC != nil || p.TLS != nil || p.Kafka != nil {
		bad("a request is one of http, grpc, tls, kafka and dns")
	}
	if err := fqdn.ValidateName(p.DNS.Query); err != nil {
		v.at(v.line(path+".dns.query"), path+".dns.query", "%v", err)
	}
	if p.DNS.Type == "" {
		p.DNS.Type = "A"
	}
	if !oneOf(p.DNS.Type, DNSQueryTypes...) {
		bad("dns.type must be one of %s, got %q", strings.Join(DNSQueryTypes, ", "), p.DNS.Type)
	}
	if p.Protocol == "" {
		p.Protocol = "UDP"
	}
	if p.Protocol != "UDP" && p.Protocol != "TCP" {
		bad("a dns request goes over UDP or TCP; protocol is %s", p.Protocol)
	}
	if p.Port.IsZero() {
		p.Port = PortRef{Number: 53}
	}
	if !v.has(path + ".to") {
		if v.dnsServer == "" {
			bad("a dns request without to goes to the cluster DNS, and spec.dns is not given")
		}
		p.To = Peer{Pod: v.dnsServer}
	}
	for i, a := range p.Expect.Answer {
		if _, err := netip.ParseAddr(a); err != nil {
			bad("expect.answer[%d]: %q is not an IP address", i, a)
		}
	}
	if len(p.Expect.Answer) > 0 && p.Expect.Verdict != "allowed" {
		bad("expect.answer goes with verdict allowed")
	}
}
