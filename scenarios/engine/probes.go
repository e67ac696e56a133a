package engine

import (
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/kestrelnet/kestrel/agent/fqdn"
	"github.com/kestrelnet/kestrel/scenarios/format"
)

// probes resolves one scenario probe into one concrete probe per IP family.
func (x *expander) probes(fp format.Probe) ([]Probe, error) {
	families, err := x.probeFamilies(fp)
	if err != nil {
		return nil, err
	}
	var out []Probe
	for _, fam := range families {
		p := Probe{
			Name:     fp.Name,
			Protocol: fp.Protocol,
			Exchange: fp.Exchange,
			SrcPort:  fp.SourcePort,
			Expect: Expectation{
				Verdict:  fp.Expect.Verdict,
				Reason:   fp.Expect.Reason,
				Backends: slices.Clone(fp.Expect.Backend.Pods),
				Status:   fp.Expect.Status,
			},
		}
		if f := fp.Expect.Flow; f != nil {
			p.Expect.Flow = &FlowExpectation{Policy: f.Policy, Direction: f.Direction, MatchType: f.MatchType}
		}
		if fp.Packet != nil {
			p.Flags = fp.Packet.Flags
		}
		if fp.HTTP != nil {
			p.HTTP = &HTTPRequest{Method: fp.HTTP.Method, Path: fp.HTTP.Path, Headers: fp.HTTP.Headers}
		}
		if k := fp.Kafka; k != nil {
			p.Kafka = &KafkaRequest{APIKey: k.APIKey, Topic: k.Topic, ClientID: k.ClientID}
		}
		if fp.TLS != nil {
			p.TLS = &TLSRequest{ServerName: fp.TLS.ServerName}
		}
		if q := fp.DNS; q != nil {
			p.DNS = &DNSRequest{Query: fqdn.Canonical(q.Query), Type: q.Type}
			for _, a := range fp.Expect.Answer {
				p.Expect.Answer = append(p.Expect.Answer, netip.MustParseAddr(a))
			}
		}
		if g := fp.GRPC; g != nil {
			// A unary call as gRPC sends it: its path names it.
			p.HTTP = &HTTPRequest{Method: "POST", Path: "/" + g.Service + "/" + g.Method,
				Headers: map[string]string{"Content-Type": "application/grpc", "Te": "trailers"}, HTTP2: true}
		}
		switch {
		case fp.Protocol == "ICMP" && (fp.Packet == nil || fp.Packet.ICMPType == nil):
			p.ICMPType = 8
		case fp.Protocol == "ICMPv6" && (fp.Packet == nil || fp.Packet.ICMPType == nil):
			p.ICMPType = 128
		case fp.Packet != nil && fp.Packet.ICMPType != nil:
			p.ICMPType = *fp.Packet.ICMPType
		}
		if p.From, err = x.peer(fp.From, fam, fp.Line); err != nil {
			return nil, err
		}
		p.From.Via = fp.From.Via
		if sip := fp.Expect.SourceIP; sip != nil {
			sp, err := x.peer(format.Peer{IP: sip.IP, Node: sip.Node, Line: fp.Line}, fam, fp.Line)
			if err != nil {
				return nil, err
			}
			if sp.IP.Is6() != (fam == "IPv6") {
				return nil, x.errorf(fp.Line, "expect.sourceIP %s is not an %s address", sp.IP, fam)
			}
			p.Expect.SourceIP = &sp
		}
		if p.To, err = x.peer(fp.To, fam, fp.Line); err != nil {
			return nil, err
		}
		if p.To.FQDN != "" {
			if p.Resolver, err = x.resolverPeer(p.To.IP.Is6(), fp.Line); err != nil {
				return nil, err
			}
		}
		portRef := fp.Port
		if fp.To.Service != "" {
			if p.Port, err = x.servicePort(fp.To, fp.Protocol, fp.Line); err != nil {
				return nil, err
			}
		} else if !portRef.IsZero() {
			if p.Port, err = x.targetPort(portRef, p.To.Pod, fp.Protocol, fp.Line); err != nil {
				return nil, err
			}
		}
		if p.To.Pod == nil && p.To.Service == "" && p.Port != 0 {
			if p.To.Frontend, err = x.frontendOf(p.To, p.Port, fp.Protocol); err != nil {
				return nil, err
			}
		}
		if len(p.Expect.Backends) > 0 && p.To.Service == "" && p.To.Frontend == "" {
			return nil, x.errorf(fp.Line, "expect.backend, but %s port %d/%s is no NodePort, LoadBalancer or external IP of a Service applied at this point", p.To.IP, p.Port, fp.Protocol)
		}
		if p.Name == "" {
			p.Name = fmt.Sprintf("%s->%s/%s", peerName(fp.From), peerName(fp.To), fp.Protocol)
			if !portRef.IsZero() {
				p.Name += "/" + portRef.String()
			}
		}
		if len(families) > 1 {
			p.Name += "/" + fam
		}
		out = append(out, p)
	}
	return out, nil
}

// probeFamilies: the probe's family, else the one a literal address implies,
// else every family of the scenario.
func (x *expander) probeFamilies(fp format.Probe) ([]string, error) {
	literal := ""
	for _, peer := range []format.Peer{fp.From, fp.To} {
		s := peer.IP
		if peer.CIDR != "" {
			s = peer.CIDR
		}
		if s == "" {
			continue
		}
		fam := "IPv4"
		if pfx, err := netip.ParsePrefix(s); err == nil && pfx.Addr().Is6() {
			fam = "IPv6"
		} else if a, err := netip.ParseAddr(s); err == nil && a.Is6() {
			fam = "IPv6"
		}
		if literal != "" && literal != fam {
			return nil, x.errorf(fp.Line, "from and to are literal addresses of different families")
		}
		literal = fam
	}
	switch {
	case fp.Family == "both" && literal != "":
		return nil, x.errorf(fp.Line, "family both, but a literal %s address is given", literal)
	case fp.Family == "both":
		return []string{"IPv4", "IPv6"}, nil
	case fp.Family != "" && literal != "" && fp.Family != literal:
		return nil, x.errorf(fp.Line, "family %s, but a literal %s address is given", fp.Family, literal)
	case fp.Family != "":
		return []string{fp.Family}, nil
	case literal != "":
		return []string{literal}, nil
	}
	return scenarioFamilies(x.s), nil
}

// peer resolves one end of a probe for one family.
func (x *expander) peer(fp format.Peer, fam string, line int) (Peer, error) {
	want6 := fam == "IPv6"
	switch {
	case fp.Pod != "":
		pod := x.st.pod(fp.Pod)
		if pod == nil {
			return Peer{}, x.errorf(fp.Line, "no pod %q (in spec.pods, or a Pod object applied at this point)", fp.Pod)
		}
		for _, ip := range pod.Status.PodIPs {
			if a := netip.MustParseAddr(ip.IP); a.Is6() == want6 {
				return Peer{Pod: pod.DeepCopy(), IP: a}, nil
			}
		}
		return Peer{}, x.errorf(fp.Line, "pod %q has no %s address", fp.Pod, fam)
	case fp.Node != "":
		for _, a := range x.st.nodeIPs[fp.Node] {
			if a.Is6() == want6 {
				return Peer{Node: fp.Node, IP: a}, nil
			}
		}
		return Peer{}, x.errorf(fp.Line, "no node %q with an %s address (nodes: %v)", fp.Node, fam, x.st.nodes)
	case fp.FQDN != "":
		return x.fqdnPeer(fp, want6)
	case fp.IP != "":
		a, err := netip.ParseAddr(fp.IP)
		if err != nil {
			return Peer{}, x.errorf(fp.Line, "%q is not an IP address", fp.IP)
		}
		return Peer{IP: a}, nil
	case fp.CIDR != "":
		pfx, err := netip.ParsePrefix(fp.CIDR)
		if err != nil {
			return Peer{}, x.errorf(fp.Line, "%q is not a CIDR", fp.CIDR)
		}
		a := pfx.Masked().Addr()
		if pfx.Bits() < a.BitLen() {
			a = a.Next()
		}
		return Peer{IP: a}, nil
	case fp.Service != "":
		return x.servicePeer(fp, want6)
	}
	return Peer{}, x.errorf(line, "empty peer")
}

// targetPort resolves a port name against the target pod's container ports.
func (x *expander) targetPort(ref format.PortRef, pod *corev1.Pod, proto string, line int) (uint16, error) {
	if ref.Name == "" {
		return ref.Number, nil
	}
	if pod == nil {
		return 0, x.errorf(line, "port %q is a name, which only a pod target can resolve", ref.Name)
	}
	for _, c := range pod.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == ref.Name && string(cp.Protocol) == proto {
				return uint16(cp.ContainerPort), nil
			}
		}
	}
	return 0, x.errorf(line, "pod %s/%s has no %s container port named %q", pod.Namespace, pod.Name, proto, ref.Name)
}

func peerName(p format.Peer) string {
	switch {
	case p.Pod != "":
		return p.Pod
	case p.Node != "":
		return "node:" + p.Node
	case p.FQDN != "":
		return "fqdn:" + p.FQDN
	case p.IP != "" && p.Via != "":
		return p.IP + "@" + p.Via
	case p.IP != "":
		return p.IP
	case p.CIDR != "":
		return "cidr:" + p.CIDR
	}
	return "svc:" + p.Service + ":" + p.Port.String()
}
