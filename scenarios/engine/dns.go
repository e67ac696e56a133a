package engine

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/kestrelnet/kestrel/agent/fqdn"
	"github.com/kestrelnet/kestrel/scenarios/format"
)

// KubeDNSServiceIP is the kube-dns Service's cluster IP spec.dns adds:
// outside the .10, .11, ... that declared Services get.
const KubeDNSServiceIP = "10.96.255.10"

// ClusterDNS is spec.dns as runners need it.
type ClusterDNS struct {
	Server  string                  // the server pod, namespace/name
	Records map[string][]netip.Addr // absolute name -> addresses
}

// DNSRequest is the query of a dns request probe.
type DNSRequest struct {
	Query string // absolute
	Type  string // A | AAAA
}

// addClusterDNS makes spec.dns's server a pod (labelled k8s-app: kube-dns)
// unless the scenario declares it, before pods are placed.
func addClusterDNS(s *format.Scenario) {
	d := s.Spec.DNS
	if d == nil {
		return
	}
	for _, p := range s.Spec.Pods {
		if p.Name == d.Server {
			return
		}
	}
	for _, o := range podObjects(s) {
		if objectKey(o) == d.Server {
			return
		}
	}
	// No container ports: the runner serves port 53 in the pod's
	// namespace itself (sim: scenarios/sim/dns.go), not the pod's echo.
	s.Spec.Pods = append(s.Spec.Pods, format.Pod{Name: d.Server, Labels: map[string]string{format.KubeDNSLabel: "kube-dns"}, Line: d.Line})
}

// kubeDNSService is the kube-dns Service in front of the server pod, as
// clusters have it, unless the scenario declares one.
func kubeDNSService(s *format.Scenario) (*format.Object, error) {
	d := s.Spec.DNS
	if d == nil {
		return nil, nil
	}
	for _, o := range s.Spec.Objects {
		if o.Kind == "Service" && o.Namespace == "kube-system" && o.Name == "kube-dns" {
			return nil, nil
		}
	}
	svc := map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"namespace": "kube-system", "name": "kube-dns", "labels": map[string]any{format.KubeDNSLabel: "kube-dns"}},
		"spec": map[string]any{
			"selector":   map[string]any{format.KubeDNSLabel: "kube-dns"},
			"clusterIP":  KubeDNSServiceIP,
			"clusterIPs": []string{KubeDNSServiceIP},
			"ports": []any{
				map[string]any{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
				map[string]any{"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
			},
		},
	}
	js, err := json.Marshal(svc)
	if err != nil {
		return nil, err
	}
	return &format.Object{APIVersion: "v1", Kind: "Service", Namespace: "kube-system", Name: "kube-dns",
		Source: fmt.Sprintf("%s:%d", s.File, d.Line), JSON: js}, nil
}

func clusterDNSOf(s *format.Scenario) *ClusterDNS {
	d := s.Spec.DNS
	if d == nil {
		return nil
	}
	out := &ClusterDNS{Server: d.Server, Records: map[string][]netip.Addr{}}
	for name, ips := range d.Records {
		for _, ip := range ips {
			out.Records[fqdn.Canonical(name)] = append(out.Records[fqdn.Canonical(name)], netip.MustParseAddr(ip))
		}
	}
	return out
}

func (d *ClusterDNS) clone() *ClusterDNS {
	if d == nil {
		return nil
	}
	return &ClusterDNS{Server: d.Server, Records: maps.Clone(d.Records)}
}

// fqdnPeer resolves {fqdn: NAME} (and {fqdn: NAME, ip: IP}) for one family
// against spec.dns.records: the runner resolves NAME through the cluster
// DNS at run time and must get this address.
func (x *expander) fqdnPeer(fp format.Peer, want6 bool) (Peer, error) {
	d := x.st.dns
	if d == nil {
		return Peer{}, x.errorf(fp.Line, "fqdn %q: spec.dns is not given, so nothing resolves it", fp.FQDN)
	}
	ips := d.Records[fqdn.Canonical(fp.FQDN)]
	if fp.IP != "" {
		a, err := netip.ParseAddr(fp.IP)
		if err != nil {
			return Peer{}, x.errorf(fp.Line, "%q is not an IP address", fp.IP)
		}
		if !slices.Contains(ips, a) {
			return Peer{}, x.errorf(fp.Line, "fqdn %q: spec.dns.records does not give it %s (it gives %v)", fp.FQDN, a, ips)
		}
		return Peer{FQDN: fqdn.Canonical(fp.FQDN), IP: a}, nil
	}
	for _, a := range ips {
		if a.Is6() == want6 {
			return Peer{FQDN: fqdn.Canonical(fp.FQDN), IP: a}, nil
		}
	}
	return Peer{}, x.errorf(fp.Line, "fqdn %q: spec.dns.records gives it no %s address", fp.FQDN, map[bool]string{false: "IPv4", true: "IPv6"}[want6])
}

// resolverPeer is the cluster DNS server pod of one family: where dns
// requests go and fqdn targets are resolved.
func (x *expander) resolverPeer(want6 bool, line int) (*Peer, error) {
	d := x.st.dns
	if d == nil {
		return nil, x.errorf(line, "spec.dns is not given: there is no cluster DNS")
	}
	p, err := x.peer(format.Peer{Pod: d.Server, Line: line}, map[bool]string{false: "IPv4", true: "IPv6"}[want6], line)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// answerProblems compares a dns request's answer, in any order.
func answerProblems(e Expectation, o Observation) []string {
	if len(e.Answer) == 0 || o.Verdict != "allowed" {
		return nil
	}
	want, got := slices.Clone(e.Answer), slices.Clone(o.Answer)
	slices.SortFunc(want, netip.Addr.Compare)
	slices.SortFunc(got, netip.Addr.Compare)
	if slices.Equal(want, got) {
		return nil
	}
	return []string{fmt.Sprintf("dns answer: expected %v, observed %v", want, got)}
}
