package observe

import (
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"

	flowpb "github.com/kestrelnet/kestrel/agent/hubbleapi/flow"
)

// Filters are a GetFlows request's allow and deny lists: a flow passes if
// it matches some allow filter (or there are none) and no deny filter. In
// one filter every field given must match (and), and a field matches if any
// of its values does (or), as in Hubble.
type Filters struct {
	Allow, Deny []*flowpb.FlowFilter
}

// Match reports whether f passes.
func (fs Filters) Match(f *flowpb.Flow) bool {
	if len(fs.Allow) > 0 {
		ok := false
		for _, flt := range fs.Allow {
			if matchFilter(flt, f) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, flt := range fs.Deny {
		if matchFilter(flt, f) {
			return false
		}
	}
	return true
}

// matchFilter applies every field of one filter. Fields about what our flows
// never carry (HTTP headers, DNS, FQDNs, translated addresses,
// interfaces, trace ids, encryption) match no flow when given.
func matchFilter(flt *flowpb.FlowFilter, f *flowpb.Flow) bool {
	if len(flt.HttpHeader)+len(flt.DnsQuery)+len(flt.SourceFqdn)+len(flt.DestinationFqdn)+len(flt.SourceIpXlated)+
		len(flt.Interface)+len(flt.TraceId)+len(flt.IpTraceId)+len(flt.NodeLabels) > 0 {
		return false
	}
	if len(flt.Encrypted) > 0 && !anyOf(flt.Encrypted, func(b bool) bool { return !b }) {
		return false
	}
	src, dst := f.GetSource(), f.GetDestination()
	ip := f.GetIP()
	srcPort, dstPort := ports(f)
	checks := []bool{
		len(flt.SourceIp) == 0 || anyOf(flt.SourceIp, func(s string) bool { return ipMatches(s, ip.GetSource()) }),
		len(flt.DestinationIp) == 0 || anyOf(flt.DestinationIp, func(s string) bool { return ipMatches(s, ip.GetDestination()) }),
		len(flt.SourcePod) == 0 || anyOf(flt.SourcePod, func(s string) bool { return podMatches(s, src) }),
		len(flt.DestinationPod) == 0 || anyOf(flt.DestinationPod, func(s string) bool { return podMatches(s, dst) }),
		len(flt.SourceLabel) == 0 || anyOf(flt.SourceLabel, func(s string) bool { return selectorMatches(s, src.GetLabels()) }),
		len(flt.DestinationLabel) == 0 || anyOf(flt.DestinationLabel, func(s string) bool { return selectorMatches(s, dst.GetLabels()) }),
		len(flt.HttpStatusCode) == 0 || anyOf(flt.HttpStatusCode, func(c string) bool { return statusMatches(c, f) }),
		len(flt.HttpMethod) == 0 || anyOf(flt.HttpMethod, func(m string) bool {
			return f.GetL7().GetHttp() != nil && strings.EqualFold(m, f.GetL7().GetHttp().GetMethod())
		}),
		len(flt.HttpPath) == 0 || anyOf(flt.HttpPath, func(re string) bool { return urlMatches(re, f, true) }),
		len(flt.HttpUrl) == 0 || anyOf(flt.HttpUrl, func(re string) bool { return urlMatches(re, f, false) }),
		len(flt.SourceWorkload) == 0 || anyOf(flt.SourceWorkload, func(w *flowpb.Workload) bool { return workloadMatches(w, src) }),
		len(flt.DestinationWorkload) == 0 || anyOf(flt.DestinationWorkload, func(w *flowpb.Workload) bool { return workloadMatches(w, dst) }),
		len(flt.SourceIdentity) == 0 || anyOf(flt.SourceIdentity, func(id uint32) bool { return id == src.GetIdentity() }),
		len(flt.DestinationIdentity) == 0 || anyOf(flt.DestinationIdentity, func(id uint32) bool { return id == dst.GetIdentity() }),
		len(flt.SourceClusterName) == 0 || anyOf(flt.SourceClusterName, func(s string) bool { return s == src.GetClusterName() }),
		len(flt.DestinationClusterName) == 0 || anyOf(flt.DestinationClusterName, func(s string) bool { return s == dst.GetClusterName() }),
		len(flt.Verdict) == 0 || anyOf(flt.Verdict, func(v flowpb.Verdict) bool { return v == f.GetVerdict() }),
		len(flt.DropReasonDesc) == 0 || anyOf(flt.DropReasonDesc, func(r flowpb.DropReason) bool {
			return f.GetVerdict() == flowpb.Verdict_DROPPED && r == f.GetDropReasonDesc()
		}),
		len(flt.TrafficDirection) == 0 || anyOf(flt.TrafficDirection, func(d flowpb.TrafficDirection) bool { return d == f.GetTrafficDirection() }),
		len(flt.Reply) == 0 || anyOf(flt.Reply, func(r bool) bool { return r == f.GetIsReply().GetValue() }),
		len(flt.IpVersion) == 0 || anyOf(flt.IpVersion, func(v flowpb.IPVersion) bool { return v == ip.GetIpVersion() }),
		len(flt.Protocol) == 0 || anyOf(flt.Protocol, func(p string) bool { return protocolMatches(p, f) }),
		len(flt.SourcePort) == 0 || anyOf(flt.SourcePort, func(p string) bool { return portMatches(p, srcPort) }),
		len(flt.DestinationPort) == 0 || anyOf(flt.DestinationPort, func(p string) bool { return portMatches(p, dstPort) }),
		len(flt.NodeName) == 0 || anyOf(flt.NodeName, func(p string) bool { return nodeMatches(p, f.GetNodeName()) }),
		len(flt.EventType) == 0 || anyOf(flt.EventType, func(e *flowpb.EventTypeFilter) bool {
			return e.GetType() == f.GetEventType().GetType() && (!e.GetMatchSubType() || e.GetSubType() == f.GetEventType().GetSubType())
		}),
		len(flt.SourceService) == 0 || anyOf(flt.SourceService, func(s string) bool { return serviceMatches(s, f.GetSourceService()) }),
		len(flt.DestinationService) == 0 || anyOf(flt.DestinationService, func(s string) bool { return serviceMatches(s, f.GetDestinationService()) }),
		len(flt.Uuid) == 0 || anyOf(flt.Uuid, func(u string) bool { return u == f.GetUuid() }),
		len(flt.TcpFlags) == 0 || anyOf(flt.TcpFlags, func(want *flowpb.TCPFlags) bool { return tcpFlagsMatch(want, f) }),
	}
	for _, ok := range checks {
		if !ok {
			return false
		}
	}
	return true
}

func anyOf[T any](vals []T, match func(T) bool) bool {
	for _, v := range vals {
		if match(v) {
			return true
		}
	}
	return false
}

// ipMatches takes an address or a CIDR prefix.
func ipMatches(want, got string) bool {
	a, err := netip.ParseAddr(got)
	if err != nil {
		return false
	}
	if p, err := netip.ParsePrefix(want); err == nil {
		return p.Contains(a)
	}
	w, err := netip.ParseAddr(want)
	return err == nil && w == a
}

// podMatches takes "namespace/pod-name-prefix", "namespace/" (any pod of
// the namespace) or "pod-name-prefix" (any namespace), as Hubble does.
func podMatches(want string, ep *flowpb.Endpoint) bool {
	if ep.GetPodName() == "" {
		return false
	}
	ns, prefix, hasNS := strings.Cut(want, "/")
	if !hasNS {
		ns, prefix = "", want
	}
	return (ns == "" || ns == ep.GetNamespace()) && strings.HasPrefix(ep.GetPodName(), prefix)
}

// serviceMatches takes "namespace/name-prefix" or a name prefix, as the
// pod filters do.
func serviceMatches(want string, svc *flowpb.Service) bool {
	if svc.GetName() == "" {
		return false
	}
	ns, prefix, hasNS := strings.Cut(want, "/")
	if !hasNS {
		ns, prefix = "", want
	}
	return (ns == "" || ns == svc.GetNamespace()) && strings.HasPrefix(svc.GetName(), prefix)
}

func protocolMatches(want string, f *flowpb.Flow) bool {
	l4 := f.GetL4()
	switch strings.ToLower(want) {
	case "tcp":
		return l4.GetTCP() != nil
	case "udp":
		return l4.GetUDP() != nil
	case "sctp":
		return l4.GetSCTP() != nil
	case "icmp":
		return l4.GetICMPv4() != nil || l4.GetICMPv6() != nil
	case "icmpv4":
		return l4.GetICMPv4() != nil
	case "icmpv6":
		return l4.GetICMPv6() != nil
	}
	return false
}

func ports(f *flowpb.Flow) (src, dst uint32) {
	l4 := f.GetL4()
	switch {
	case l4.GetTCP() != nil:
		return l4.GetTCP().GetSourcePort(), l4.GetTCP().GetDestinationPort()
	case l4.GetUDP() != nil:
		return l4.GetUDP().GetSourcePort(), l4.GetUDP().GetDestinationPort()
	case l4.GetSCTP() != nil:
		return l4.GetSCTP().GetSourcePort(), l4.GetSCTP().GetDestinationPort()
	}
	return 0, 0
}

func portMatches(want string, got uint32) bool {
	n, err := strconv.ParseUint(want, 10, 16)
	return err == nil && got != 0 && uint32(n) == got
}

// nodeMatches takes a node name pattern with * wildcards, optionally as
// cluster/node.
func nodeMatches(pattern, node string) bool {
	if _, n, ok := strings.Cut(pattern, "/"); ok {
		pattern = n
	}
	ok, err := path.Match(pattern, node)
	return err == nil && ok
}

// tcpFlagsMatch: every flag set in want is set in the flow.
func tcpFlagsMatch(want *flowpb.TCPFlags, f *flowpb.Flow) bool {
	got := f.GetL4().GetTCP().GetFlags()
	if got == nil {
		return false
	}
	pairs := [][2]bool{{want.FIN, got.FIN}, {want.SYN, got.SYN}, {want.RST, got.RST}, {want.PSH, got.PSH},
		{want.ACK, got.ACK}, {want.URG, got.URG}, {want.ECE, got.ECE}, {want.CWR, got.CWR}, {want.NS, got.NS}}
	for _, p := range pairs {
		if p[0] && !p[1] {
			return false
		}
	}
	return true
}

// workloadMatches: the name must match, the kind too if given.
func workloadMatches(want *flowpb.Workload, ep *flowpb.Endpoint) bool {
	return anyOf(ep.GetWorkloads(), func(w *flowpb.Workload) bool {
		return w.GetName() == want.GetName() && (want.GetKind() == "" || w.GetKind() == want.GetKind())
	})
}

// statusMatches takes a code ("403") or a prefix of one ending in + ("4+",
// "40+"), as Hubble does.
func statusMatches(want string, f *flowpb.Flow) bool {
	h := f.GetL7().GetHttp()
	if h == nil {
		return false
	}
	got := strconv.Itoa(int(h.GetCode()))
	if p, ok := strings.CutSuffix(want, "+"); ok {
		return strings.HasPrefix(got, p) && len(got) > len(p)
	}
	return got == want
}

// urlMatches applies a regular expression (anchored at the start, as Cilium's
// path rules are) to the request's URL, or to its path alone.
func urlMatches(expr string, f *flowpb.Flow, pathOnly bool) bool {
	h := f.GetL7().GetHttp()
	if h == nil {
		return false
	}
	re, err := regexp.Compile("^(?:" + expr + ")")
	if err != nil {
		return false
	}
	s := h.GetUrl()
	if pathOnly {
		if u, err := url.Parse(s); err == nil && u.Path != "" && u.Host != "" {
			s = u.Path
		} else if i := strings.Index(s, "/"); i >= 0 {
			s = s[i:]
		}
	}
	return re.MatchString(s)
}
