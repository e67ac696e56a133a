package format

import (
	"fmt"
	"net/netip"
	"strings"

	"gopkg.in/yaml.v3"
)

// Allowed values of the enumerated fields.
var (
	Modes      = []string{"unit", "sim", "kind"}
	Protocols  = []string{"TCP", "UDP", "SCTP", "ICMP", "ICMPv6"}
	Exchanges  = []string{"connect", "packet", "request"}
	Verdicts   = []string{"allowed", "dropped", "l7-denied", "rejected"}
	Families   = []string{"IPv4", "IPv6", "both"}
	TCPFlags   = []string{"SYN", "ACK", "FIN", "RST", "PSH", "URG"}
	Directions = []string{"ingress", "egress"}
	MatchTypes = []string{"l3-only", "l3-l4", "l4-only", "all", "none"}
)

// validate checks what the types alone cannot: required fields, enumerations,
// and references within the document. Defaults are filled in here.
func (d *decoder) validate(doc *yaml.Node, s *Scenario) error {
	at := func(line int, format string, args ...any) error {
		return &Error{File: d.file, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	if s.APIVersion != APIVersion || s.Kind != Kind {
		return at(doc.Line, "expected apiVersion %s and kind %s, got %q and %q", APIVersion, Kind, s.APIVersion, s.Kind)
	}
	if s.Metadata.Name == "" {
		return at(doc.Line, "metadata.name is required")
	}
	for _, m := range s.Spec.Modes {
		if !oneOf(m, Modes...) {
			return at(doc.Line, "spec.modes: unknown mode %q (known: %s)", m, strings.Join(Modes, ", "))
		}
	}
	for _, f := range s.Spec.IPFamilies {
		if !oneOf(f, "IPv4", "IPv6") {
			return at(doc.Line, "spec.ipFamilies: %q is neither IPv4 nor IPv6", f)
		}
	}
	if dup := firstDuplicate(s.Spec.Nodes); dup != "" {
		return at(doc.Line, "spec.nodes: %q appears twice", dup)
	}
	if len(s.Spec.Nodes) == 0 {
		s.Spec.Nodes = []string{"node-1"}
	}
	seenPods := map[string]bool{}
	for i := range s.Spec.Pods {
		p := &s.Spec.Pods[i]
		ns, name, ok := strings.Cut(p.Name, "/")
		if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			return at(p.Line, "spec.pods[%d]: name must be namespace/name, got %q", i, p.Name)
		}
		if seenPods[p.Name] {
			return at(p.Line, "spec.pods[%d]: pod %q is declared twice", i, p.Name)
		}
		seenPods[p.Name] = true
		if p.Node != "" && !oneOf(p.Node, s.Spec.Nodes...) {
			return at(p.Line, "spec.pods[%d]: node %q is not in spec.nodes %v", i, p.Node, s.Spec.Nodes)
		}
		if p.IP != "" {
			p.IPs = append([]string{p.IP}, p.IPs...)
			p.IP = ""
		}
		families := map[bool]bool{}
		for _, ip := range p.IPs {
			a, err := netip.ParseAddr(ip)
			if err != nil {
				return at(p.Line, "spec.pods[%d]: %q is not an IP address", i, ip)
			}
			if families[a.Is4()] {
				return at(p.Line, "spec.pods[%d]: at most one IPv4 and one IPv6 address", i)
			}
			families[a.Is4()] = true
		}
	}
	objects := map[string]bool{}
	for _, o := range s.Spec.Objects {
		key := o.Kind + "/" + o.Namespace + "/" + o.Name
		if objects[key] {
			return fmt.Errorf("%s: %s %s is declared twice", o.Source, o.Kind, o.Name)
		}
		objects[key] = true
	}
	for i := range s.Spec.Steps {
		st := &s.Spec.Steps[i]
		for j, sl := range st.SetLabels {
			if (sl.Pod == "") == (sl.Namespace == "") {
				return at(sl.Line, "spec.steps[%d].setLabels[%d]: give exactly one of pod or namespace", i, j)
			}
		}
		if err := d.validateProbes(st.Probes, st.Reachability, fmt.Sprintf("spec.steps[%d]", i)); err != nil {
			return err
		}
	}
	return d.validateProbes(s.Spec.Probes, s.Spec.Reachability, "spec")
}

func (d *decoder) validateProbes(probes []Probe, rs Reachabilities, path string) error {
	for i := range probes {
		if err := d.validateProbe(&probes[i], fmt.Sprintf("%s.probes[%d]", path, i)); err != nil {
			return err
		}
	}
	for i := range rs {
		r := &rs[i]
		if r.Protocol == "" {
			r.Protocol = "TCP"
		}
		if !oneOf(r.Protocol, "TCP", "UDP", "SCTP") {
			return &Error{File: d.file, Line: r.Line, Msg: fmt.Sprintf("%s.reachability: protocol must be TCP, UDP or SCTP, got %q", path, r.Protocol)}
		}
		if r.Port.IsZero() {
			return &Error{File: d.file, Line: r.Line, Msg: path + ".reachability: port is required"}
		}
		if r.Reason != "" && !isReasonName(r.Reason) {
			return &Error{File: d.file, Line: r.Line, Msg: fmt.Sprintf("%s.reachability: reason %q is not a drop reason name (UPPER_SNAKE_CASE)", path, r.Reason)}
		}
		for _, m := range r.Modes {
			if !oneOf(m, Modes...) {
				return &Error{File: d.file, Line: r.Line, Msg: fmt.Sprintf("%s.reachability: unknown mode %q", path, m)}
			}
		}
	}
	return nil
}

func (d *decoder) validateProbe(p *Probe, path string) error {
	bad := func(format string, args ...any) error {
		return &Error{File: d.file, Line: p.Line, Msg: path + ": " + fmt.Sprintf(format, args...)}
	}
	if p.From.Line == 0 || p.To.Line == 0 {
		return bad("from and to are required")
	}
	if p.From.Service != "" || p.From.CIDR != "" || p.From.FQDN != "" {
		return bad("from is a pod, {ip: ...} or {node: ...}")
	}
	if p.Protocol == "" {
		p.Protocol = "TCP"
	}
	if !oneOf(p.Protocol, Protocols...) {
		return bad("protocol must be one of %s, got %q", strings.Join(Protocols, ", "), p.Protocol)
	}
	icmp := p.Protocol == "ICMP" || p.Protocol == "ICMPv6"
	switch {
	case icmp && !p.Port.IsZero():
		return bad("%s has no ports", p.Protocol)
	case !icmp && p.Port.IsZero() && p.To.Service == "":
		return bad("port is required for %s", p.Protocol)
	case !p.Port.IsZero() && p.To.Service != "":
		return bad("with a service peer the port is given in to.port")
	}
	if p.Exchange == "" {
		p.Exchange = "connect"
	}
	if !oneOf(p.Exchange, Exchanges...) {
		return bad("exchange must be one of %s, got %q", strings.Join(Exchanges, ", "), p.Exchange)
	}
	if (p.Packet != nil) != (p.Exchange == "packet") {
		return bad("packet is given exactly when exchange is packet")
	}
	if p.HTTP != nil && p.Exchange != "request" {
		return bad("http is given only with exchange: request")
	}
	if p.Packet != nil {
		for _, f := range p.Packet.Flags {
			if !oneOf(f, TCPFlags...) {
				return bad("packet.flags: unknown flag %q (known: %s)", f, strings.Join(TCPFlags, ", "))
			}
		}
		if len(p.Packet.Flags) > 0 && p.Protocol != "TCP" {
			return bad("packet.flags are TCP flags; protocol is %s", p.Protocol)
		}
		if p.Packet.ICMPType != nil && !icmp {
			return bad("packet.icmpType needs protocol ICMP or ICMPv6")
		}
	}
	if p.Family != "" && !oneOf(p.Family, Families...) {
		return bad("family must be one of %s, got %q", strings.Join(Families, ", "), p.Family)
	}
	for _, m := range p.Modes {
		if !oneOf(m, Modes...) {
			return bad("unknown mode %q", m)
		}
	}
	e := &p.Expect
	if !oneOf(e.Verdict, Verdicts...) {
		return bad("expect.verdict must be one of %s, got %q", strings.Join(Verdicts, ", "), e.Verdict)
	}
	if e.Reason != "" && e.Verdict != "dropped" {
		return bad("expect.reason goes with verdict dropped")
	}
	if e.Reason != "" && !isReasonName(e.Reason) {
		return bad("expect.reason %q is not a drop reason name (UPPER_SNAKE_CASE)", e.Reason)
	}
	if f := e.Flow; f != nil {
		if f.Direction != "" && !oneOf(f.Direction, Directions...) {
			return bad("expect.flow.direction must be ingress or egress, got %q", f.Direction)
		}
		if f.MatchType != "" && !oneOf(f.MatchType, MatchTypes...) {
			return bad("expect.flow.matchType must be one of %s, got %q", strings.Join(MatchTypes, ", "), f.MatchType)
		}
	}
	return nil
}

func isReasonName(s string) bool {
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return s != ""
}
