package format

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/agent/yamldoc"
)

// Allowed values of the enumerated fields.
var (
	Modes      = []string{"unit", "sim", "kind", "cluster"}
	Protocols  = []string{"TCP", "UDP", "SCTP", "ICMP", "ICMPv6"}
	Exchanges  = []string{"connect", "packet", "request"}
	Verdicts   = []string{"allowed", "dropped", "l7-denied", "rejected"}
	Families   = []string{"IPv4", "IPv6", "both"}
	TCPFlags   = []string{"SYN", "ACK", "FIN", "RST", "PSH", "URG"}
	Directions = []string{"ingress", "egress"}
	MatchTypes = []string{"l3-only", "l3-l4", "l4-only", "all", "none"}
)

// validator checks what the types alone cannot: required fields, enumerations,
// the contents of multi-shape values, the objects, and references within the
// document. It fills in defaults and lines, and records every problem.
type validator struct {
	*errs
	doc   *yamldoc.Doc
	nodes []string // spec.nodes, once known
	// dnsServer is spec.dns.server, the target of dns requests without to.
	dnsServer string
}

// line is where the value at path starts (or its nearest enclosing field).
func (v *validator) line(path string) int {
	if n := v.doc.Value(path); n != nil {
		return n.Line
	}
	return v.doc.Line(path)
}

func (v *validator) has(path string) bool { return v.doc.Value(path) != nil }

func (v *validator) scenario(s *Scenario) {
	if s.APIVersion != APIVersion || s.Kind != Kind {
		v.at(v.doc.Node.Line, "", "expected apiVersion %s and kind %s, got %q and %q", APIVersion, Kind, s.APIVersion, s.Kind)
	}
	if s.Metadata.Name == "" {
		v.at(v.line("metadata"), "", "metadata.name is required")
	}
	for i, m := range s.Spec.Modes {
		if !oneOf(m, Modes...) {
			v.at(v.line(fmt.Sprintf("spec.modes[%d]", i)), "spec.modes", "unknown mode %q (known: %s)", m, strings.Join(Modes, ", "))
		}
	}
	for i, f := range s.Spec.IPFamilies {
		if !oneOf(f, "IPv4", "IPv6") {
			v.at(v.line(fmt.Sprintf("spec.ipFamilies[%d]", i)), "spec.ipFamilies", "%q is neither IPv4 nor IPv6", f)
		}
	}
	if dup := firstDuplicate(s.Spec.Nodes); dup != "" {
		v.at(v.line("spec.nodes"), "spec.nodes", "%q appears twice", dup)
	}
	if len(s.Spec.Nodes) == 0 {
		s.Spec.Nodes = []string{"node-1"}
	}
	v.pods(s)
	v.world(s)
	v.clusterDNS(s)
	if s.Spec.DNS != nil {
		v.dnsServer = s.Spec.DNS.Server
	}
	v.nodes = s.Spec.Nodes
	objects := map[string]bool{}
	for i := range s.Spec.Objects {
		path := fmt.Sprintf("spec.objects[%d]", i)
		o, ok := v.object(path)
		s.Spec.Objects[i] = o
		if !ok {
			continue
		}
		key := o.Kind + "/" + o.Namespace + "/" + o.Name
		if objects[key] {
			v.at(v.line(path), path, "%s %s is declared twice", o.Kind, o.Name)
		}
		objects[key] = true
	}
	for i := range s.Spec.Steps {
		st := &s.Spec.Steps[i]
		path := fmt.Sprintf("spec.steps[%d]", i)
		st.Line = v.line(path)
		for j := range st.Apply {
			ref := &st.Apply[j]
			p := fmt.Sprintf("%s.apply[%d]", path, j)
			ref.Line = v.line(p)
			if ref.Inline != nil {
				o, _ := v.object(p)
				ref.Inline = &o
			}
		}
		for j := range st.SetLabels {
			sl := &st.SetLabels[j]
			p := fmt.Sprintf("%s.setLabels[%d]", path, j)
			sl.Line = v.line(p)
			if (sl.Pod == "") == (sl.Namespace == "") {
				v.at(sl.Line, p, "give exactly one of pod or namespace")
			}
		}
		v.probes(st.Probes, path)
		v.reachabilities(st.Reachability, path)
	}
	v.probes(s.Spec.Probes, "spec")
	v.reachabilities(s.Spec.Reachability, "spec")
}

func (v *validator) pods(s *Scenario) {
	seen := map[string]bool{}
	for i := range s.Spec.Pods {
		p := &s.Spec.Pods[i]
		path := fmt.Sprintf("spec.pods[%d]", i)
		p.Line = v.line(path)
		ns, name, ok := strings.Cut(p.Name, "/")
		if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			v.at(p.Line, path, "name must be namespace/name, got %q", p.Name)
		}
		if seen[p.Name] {
			v.at(p.Line, path, "pod %q is declared twice", p.Name)
		}
		seen[p.Name] = true
		if p.Node != "" && !oneOf(p.Node, s.Spec.Nodes...) {
			v.at(p.Line, path, "node %q is not in spec.nodes %v", p.Node, s.Spec.Nodes)
		}
		if p.Server != "" && p.Server != "json-mock" {
			v.at(v.line(path+".server"), path+".server", "unknown server %q (json-mock, or leave it out for the echo)", p.Server)
		}
		for j := range p.Ports {
			v.containerPort(&p.Ports[j], fmt.Sprintf("%s.ports[%d]", path, j))
		}
		if p.IP != "" {
			p.IPs = append([]string{p.IP}, p.IPs...)
			p.IP = ""
		}
		families := map[bool]bool{}
		for _, ip := range p.IPs {
			a, err := netip.ParseAddr(ip)
			if err != nil {
				v.at(p.Line, path, "%q is not an IP address", ip)
				continue
			}
			if families[a.Is4()] {
				v.at(p.Line, path, "at most one IPv4 and one IPv6 address")
			}
			families[a.Is4()] = true
		}
	}
}

// world checks spec.world: each server an address of its own, with ports.
func (v *validator) world(s *Scenario) {
	seen := map[netip.Addr]bool{}
	for i := range s.Spec.World {
		w := &s.Spec.World[i]
		path := fmt.Sprintf("spec.world[%d]", i)
		w.Line = v.line(path)
		a, err := netip.ParseAddr(w.IP)
		switch {
		case w.IP == "":
			v.at(w.Line, path+".ip", "ip is required")
		case err != nil:
			v.at(v.line(path+".ip"), path+".ip", "%q is not an IP address", w.IP)
		case seen[a]:
			v.at(w.Line, path+".ip", "%s is declared twice", a)
		default:
			seen[a] = true
			if pod, _ := inCluster(a); pod {
				v.at(v.line(path+".ip"), path+".ip", "%s is in the cluster's pod ranges, not outside the cluster", a)
			}
		}
		if len(w.Ports) == 0 {
			v.at(w.Line, path+".ports", "a world server needs ports")
		}
		for j := range w.Ports {
			v.containerPort(&w.Ports[j], fmt.Sprintf("%s.ports[%d]", path, j))
		}
	}
}

// inCluster reports whether a is in the pod ranges every mode gives nodes.
func inCluster(a netip.Addr) (bool, string) {
	for _, p := range []string{"10.244.0.0/16", "fd00:10:244::/48"} {
		if netip.MustParsePrefix(p).Contains(a) {
			return true, p
		}
	}
	return false, ""
}

func (v *validator) containerPort(p *ContainerPort, path string) {
	line := v.line(path)
	if p.bad != "" {
		v.at(line, path, `expected "PORT/PROTOCOL" with a port from 1 to 65535, got %q`, p.bad)
		return
	}
	if p.Port == 0 {
		v.at(line, path, "port is required")
	}
	if p.Protocol == "" {
		p.Protocol = "TCP"
	}
	if !oneOf(p.Protocol, "TCP", "UDP", "SCTP") {
		v.at(line, path, "protocol must be TCP, UDP or SCTP, got %q", p.Protocol)
	}
}

func (v *validator) portRef(p PortRef, path string) {
	if p.bad != "" {
		v.at(v.line(path), path, "expected a port number from 1 to 65535 or a port name, got %s", p.bad)
	}
}

// object reads the object at path from the document's node tree: any
// Kubernetes object is kept as JSON; the kinds Kestrel reads itself (policies,
// CiliumCIDRGroups, namespaces, service accounts, pods, services, endpoint
// slices) are decoded strictly, so a mistake in them is reported here, with
// its path and line.
func (v *validator) object(path string) (Object, bool) {
	n := v.doc.Value(path)
	if path == "" {
		n = v.doc.Node
	}
	if n == nil || n.Kind != yaml.MappingNode {
		v.at(v.line(path), path, "expected an object (a mapping with apiVersion, kind, metadata)")
		return Object{}, false
	}
	sub, err := yamldoc.Convert(n, nil)
	if err != nil {
		e := asError(v.file, err)
		v.list = append(v.list, e)
		return Object{}, false
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string            `json:"name"`
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal(sub.JSON, &head) // a field of the wrong type is reported below
	if head.APIVersion == "" || head.Kind == "" || head.Metadata.Name == "" {
		v.at(n.Line, path, "an object needs apiVersion, kind and metadata.name")
		return Object{}, false
	}
	o := Object{
		APIVersion: head.APIVersion,
		Kind:       head.Kind,
		Namespace:  head.Metadata.Namespace,
		Name:       head.Metadata.Name,
		Labels:     head.Metadata.Labels,
		Source:     fmt.Sprintf("%s:%d", v.file, n.Line),
		JSON:       sub.JSON,
	}
	before := len(v.list)
	switch o.Kind {
	case "NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy", "CiliumCIDRGroup":
		if _, err := policy.ParseNode(n, v.file, path); err != nil {
			if list, ok := err.(policy.Errors); ok {
				for _, e := range list {
					v.at(e.Line, e.Path, "%s", e.Msg)
				}
			} else {
				v.at(n.Line, path, "%v", err)
			}
		}
	case "Namespace":
		strictObject[corev1.Namespace](v, n, path)
	case "ServiceAccount":
		strictObject[corev1.ServiceAccount](v, n, path)
	case "Secret":
		strictObject[corev1.Secret](v, n, path)
	case "Pod":
		if pod := strictObject[corev1.Pod](v, n, path); pod != nil {
			v.podObject(pod, path)
		}
	case "Service":
		strictObject[corev1.Service](v, n, path)
	case "EndpointSlice":
		strictObject[discoveryv1.EndpointSlice](v, n, path)
	}
	return o, len(v.list) == before
}

// strictObject decodes an object with yamldoc.Strict (sigs.k8s.io/json strict
// mode) and records every error it reports.
func strictObject[T any](v *validator, n *yaml.Node, path string) *T {
	out, _, _, list := yamldoc.Strict[T](n)
	for _, e := range list {
		v.at(e.Line, joinPath(path, e.Path), "%s", e.Msg)
	}
	if len(list) > 0 {
		return nil
	}
	return out
}

// podObject checks what a scenario needs of a Pod object: containers with
// well-formed ports (the sim's servers answer on them), a node from
// spec.nodes is checked when the cluster is laid out.
func (v *validator) podObject(pod *corev1.Pod, path string) {
	if len(pod.Spec.Containers) == 0 {
		v.at(v.line(path+".spec"), path+".spec.containers", "a pod needs at least one container")
	}
	for i, c := range pod.Spec.Containers {
		for j, p := range c.Ports {
			pp := fmt.Sprintf("%s.spec.containers[%d].ports[%d]", path, i, j)
			if p.ContainerPort < 1 || p.ContainerPort > 65535 {
				v.at(v.line(pp), pp+".containerPort", "must be from 1 to 65535, got %d", p.ContainerPort)
			}
			if p.Protocol != "" && !oneOf(string(p.Protocol), "TCP", "UDP", "SCTP") {
				v.at(v.line(pp), pp+".protocol", "must be TCP, UDP or SCTP, got %q", p.Protocol)
			}
		}
	}
}

func (v *validator) probes(probes []Probe, path string) {
	for i := range probes {
		v.probe(&probes[i], fmt.Sprintf("%s.probes[%d]", path, i))
	}
}

func (v *validator) reachabilities(rs Reachabilities, path string) {
	path += ".reachability"
	list := false
	if n := v.doc.Value(path); n != nil && n.Kind == yaml.SequenceNode {
		list = true
	}
	for i := range rs {
		r := &rs[i]
		p := path
		if list {
			p = fmt.Sprintf("%s[%d]", path, i)
		}
		r.Line = v.line(p)
		if r.Protocol == "" {
			r.Protocol = "TCP"
		}
		if !oneOf(r.Protocol, "TCP", "UDP", "SCTP") {
			v.at(r.Line, p, "protocol must be TCP, UDP or SCTP, got %q", r.Protocol)
		}
		v.portRef(r.Port, p+".port")
		if r.Port.IsZero() && r.Port.bad == "" {
			v.at(r.Line, p, "port is required")
		}
		if r.Reason != "" && !isReasonName(r.Reason) {
			v.at(r.Line, p, "reason %q is not a drop reason name (UPPER_SNAKE_CASE)", r.Reason)
		}
		for _, m := range r.Modes {
			if !oneOf(m, Modes...) {
				v.at(r.Line, p, "unknown mode %q", m)
			}
		}
		v.matrix(r, p)
	}
}

func (v *validator) peer(p *Peer, path string) {
	p.Line = v.line(path)
	if p.bad != "" {
		v.at(p.Line, path, "%s", p.bad)
		return
	}
	if p.Pod != "" {
		return
	}
	v.portRef(p.Port, path+".port")
	var kinds []string
	for _, k := range []struct {
		name string
		set  bool
	}{{"ip", p.IP != "" && p.FQDN == ""}, {"node", p.Node != ""}, {"cidr", p.CIDR != ""}, {"service", p.Service != ""}, {"fqdn", p.FQDN != ""}} {
		if k.set {
			kinds = append(kinds, k.name)
		}
	}
	if len(kinds) != 1 {
		v.at(p.Line, path, "give exactly one of ip, node, cidr, service, fqdn (or a pod as namespace/name)")
	}
	if !p.Port.IsZero() && p.Service == "" {
		v.at(p.Line, path, "port belongs to the probe, not to the peer, unless the peer is a service")
	}
	if p.Service != "" && p.Port.IsZero() && p.Port.bad == "" {
		v.at(p.Line, path, "a service peer needs its port")
	}
	if p.Via != "" {
		switch {
		case p.IP == "" || p.FQDN != "":
			v.at(v.line(path+".via"), path+".via", "via goes with ip: a world source and the node it enters at")
		case !oneOf(p.Via, v.nodes...):
			v.at(v.line(path+".via"), path+".via", "node %q is not in spec.nodes %v", p.Via, v.nodes)
		}
	}
}

func (v *validator) probe(p *Probe, path string) {
	p.Line = v.line(path)
	bad := func(format string, args ...any) { v.at(p.Line, path, format, args...) }
	if !v.has(path+".from") || (!v.has(path+".to") && p.DNS == nil) {
		bad("from and to are required")
	}
	v.dnsProbe(p, path, bad)
	if v.has(path + ".from") {
		v.peer(&p.From, path+".from")
	}
	if v.has(path + ".to") {
		v.peer(&p.To, path+".to")
	}
	if p.From.Service != "" || p.From.CIDR != "" || p.From.FQDN != "" {
		bad("from is a pod, {ip: ...}, {ip: ..., via: NODE} or {node: ...}")
	}
	if p.To.Via != "" {
		v.at(v.line(path+".to.via"), path+".to.via", "via belongs to a world source (from), not to the target")
	}
	v.portRef(p.Port, path+".port")
	if p.Protocol == "" {
		p.Protocol = "TCP"
	}
	if !oneOf(p.Protocol, Protocols...) {
		bad("protocol must be one of %s, got %q", strings.Join(Protocols, ", "), p.Protocol)
	}
	icmp := p.Protocol == "ICMP" || p.Protocol == "ICMPv6"
	switch {
	case p.Port.bad != "":
	case icmp && !p.Port.IsZero():
		bad("%s has no ports", p.Protocol)
	case !icmp && p.Port.IsZero() && p.To.Service == "":
		bad("port is required for %s", p.Protocol)
	case !p.Port.IsZero() && p.To.Service != "":
		bad("with a service peer the port is given in to.port")
	}
	if p.Exchange == "" {
		p.Exchange = "connect"
	}
	if !oneOf(p.Exchange, Exchanges...) {
		bad("exchange must be one of %s, got %q", strings.Join(Exchanges, ", "), p.Exchange)
	}
	if (p.Packet != nil) != (p.Exchange == "packet") {
		bad("packet is given exactly when exchange is packet")
	}
	if p.HTTP != nil && p.Exchange != "request" {
		bad("http is given only with exchange: request")
	}
	if p.GRPC != nil && p.Exchange != "request" {
		bad("grpc is given only with exchange: request")
	}
	if p.GRPC != nil && p.HTTP != nil {
		bad("a request is http or grpc, not both")
	}
	if g := p.GRPC; g != nil && (g.Service == "" || g.Method == "" || strings.Contains(g.Service, "/") || strings.Contains(g.Method, "/")) {
		bad("grpc needs service (package.Service) and method, without slashes")
	}
	if p.Exchange == "request" {
		switch {
		case p.HTTP == nil && p.GRPC == nil && p.TLS == nil && p.Kafka == nil && p.DNS == nil:
			bad("exchange: request needs the request: http, grpc, tls, kafka or dns")
		case p.DNS != nil:
		case p.Protocol != "TCP":
			bad("an http request goes over TCP; protocol is %s", p.Protocol)
		case p.To.Service != "":
			bad("http requests to a service are not built yet: name the pod")
		}
		if p.HTTP != nil && p.HTTP.Method == "" {
			p.HTTP.Method = "GET"
		}
		if p.HTTP != nil && p.HTTP.Path == "" {
			p.HTTP.Path = "/"
		}
		if p.HTTP != nil && !strings.HasPrefix(p.HTTP.Path, "/") {
			bad("http.path must start with /, got %q", p.HTTP.Path)
		}
	}
	validateTLSProbe(p, bad)
	validateKafkaProbe(p, bad)
	// A target named by fqdn is l7-denied when the DNS proxy refuses its
	// name: the connection never starts.
	if p.Expect.Verdict == "l7-denied" && p.Exchange != "request" && p.To.FQDN == "" {
		bad("expect.verdict l7-denied goes with exchange: request")
	}
	if s := p.Expect.Status; s != 0 && (p.Exchange != "request" || p.Expect.Verdict != "allowed" || s < 100 || s > 599) {
		bad("expect.status is the server's HTTP status (100-599) of an allowed exchange: request")
	}
	if p.Packet != nil {
		for _, f := range p.Packet.Flags {
			if !oneOf(f, TCPFlags...) {
				bad("packet.flags: unknown flag %q (known: %s)", f, strings.Join(TCPFlags, ", "))
			}
		}
		if len(p.Packet.Flags) > 0 && p.Protocol != "TCP" {
			bad("packet.flags are TCP flags; protocol is %s", p.Protocol)
		}
		if p.Packet.ICMPType != nil && !icmp {
			bad("packet.icmpType needs protocol ICMP or ICMPv6")
		}
	}
	if p.Family != "" && !oneOf(p.Family, Families...) {
		bad("family must be one of %s, got %q", strings.Join(Families, ", "), p.Family)
	}
	for _, m := range p.Modes {
		if !oneOf(m, Modes...) {
			bad("unknown mode %q", m)
		}
	}
	e := &p.Expect
	if !oneOf(e.Verdict, Verdicts...) {
		bad("expect.verdict must be one of %s, got %q", strings.Join(Verdicts, ", "), e.Verdict)
	}
	if e.Reason != "" && e.Verdict != "dropped" && e.Verdict != "rejected" {
		bad("expect.reason goes with verdict dropped or rejected")
	}
	switch b := e.Backend; {
	case b.bad != "":
		bad("expect.backend: %s", b.bad)
	case len(b.Pods) > 0 && p.To.Service == "" && p.To.Node == "" && (p.To.IP == "" || p.To.FQDN != ""):
		bad("expect.backend goes with a service target: {service: ns/name, port: ...}, a NodePort ({node: N} and port) or a LoadBalancer or external IP ({ip: ...})")
	case v.has(path+".expect.backend") && len(b.Pods) == 0:
		bad("expect.backend: give a pod (namespace/name) or a list of pods")
	}
	for _, pod := range e.Backend.Pods {
		if ns, name, ok := strings.Cut(pod, "/"); !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			bad("expect.backend: a pod is written namespace/name, got %q", pod)
		}
	}
	if sip := e.SourceIP; sip != nil {
		sp := path + ".expect.sourceIP"
		_, ipErr := netip.ParseAddr(sip.IP)
		switch {
		case sip.bad != "":
			v.at(v.line(sp), sp, "%s", sip.bad)
		case sip.Node != "" && !oneOf(sip.Node, v.nodes...):
			v.at(v.line(sp), sp+".node", "node %q is not in spec.nodes %v", sip.Node, v.nodes)
		case sip.Node == "" && ipErr != nil:
			v.at(v.line(sp), sp, "%q is not an IP address", sip.IP)
		}
		if p.Protocol != "TCP" && p.Protocol != "UDP" {
			v.at(v.line(sp), sp, "the server reports the client address over TCP or UDP, not %s", p.Protocol)
		}
	}
	if e.Reason != "" && !isReasonName(e.Reason) {
		bad("expect.reason %q is not a drop reason name (UPPER_SNAKE_CASE)", e.Reason)
	}
	if f := e.Flow; f != nil {
		if f.Direction != "" && !oneOf(f.Direction, Directions...) {
			bad("expect.flow.direction must be ingress or egress, got %q", f.Direction)
		}
		if f.MatchType != "" && !oneOf(f.MatchType, MatchTypes...) {
			bad("expect.flow.matchType must be one of %s, got %q", strings.Join(MatchTypes, ", "), f.MatchType)
		}
	}
}

func isReasonName(s string) bool {
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return s != ""
}
