package unit

import (
	"context"
	"fmt"
	"strings"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/packet"
	"github.com/kestrelnet/kestrel/scenarios/engine"
)

// Source ports for probes that do not name one: every probe is a new
// connection, as a real client's ephemeral port would make it.
const (
	ephemeralLow  = 32768
	ephemeralHigh = 60999
)

// hop is one hook a frame crosses: a pod's veth on that pod's node.
type hop struct {
	node *node
	hook datapath.Hook
	pod  string
}

func (s *session) Probe(ctx context.Context, p engine.Probe) engine.Observation {
	switch {
	case p.DNS != nil:
		return s.probeDNS(p)
	case p.Resolver != nil:
		return s.probeFQDN(ctx, p)
	case p.From.Via != "":
		return s.probeWorld(p)
	case p.To.Service != "" || p.To.Frontend != "":
		return s.probeService(p)
	}
	if p.Exchange == "request" && p.From.Pod != nil {
		// The request's SYN crosses the client's hook; a redirect is
		// decided by the proxy in-process, and without one the request
		// is a connect, to a pod or to the world (probeToWorld).
		return s.probeRequest(p)
	}
	if _, _, ok := netdevHooks(); ok && s.toWorld(p) {
		client, err := s.podHop(p.From, datapath.FromContainer)
		if err != nil {
			return engine.Observation{Err: err}
		}
		return s.probeToWorld(p, client)
	}
	if p.Exchange == "request" {
		return s.probeRequest(p)
	}
	fwd, rev, err := s.frames(p)
	if err != nil {
		return engine.Observation{Err: err}
	}
	there, back, err := s.path(p)
	if err != nil {
		return engine.Observation{Err: err}
	}
	if len(there) == 0 {
		return engine.Observation{Err: fmt.Errorf("neither end of the probe is a pod: nothing in unit mode polices it")}
	}
	obs := engine.Observation{Verdict: "allowed"}
	var evidence []string
	legs := []struct {
		name  string
		frame packet.Spec
		hops  []hop
	}{{"request", fwd, there}}
	if rev != nil {
		legs = append(legs, struct {
			name  string
			frame packet.Spec
			hops  []hop
		}{"reply", *rev, back})
	}
	for _, leg := range legs {
		frame, err := packet.Build(leg.frame)
		if err != nil {
			return engine.Observation{Err: err}
		}
		for _, h := range leg.hops {
			res, err := h.node.dp.Run(h.hook, frame)
			if err != nil {
				return engine.Observation{Err: err}
			}
			redirected := s.collect(&obs, &evidence, leg.name, h, res) != 0
			// The proxy's listener takes the connection (an ingress
			// redirect must still find it at the device's ingress):
			// connected, whatever its requests will be told.
			if redirected && res.Code != datapath.TCActShot && h.hook == datapath.ToContainer {
				dev, _ := h.node.dp.DeviceOf(s.epIDs[h.pod])
				if res, err = h.node.dp.RunMarked(datapath.FromContainer, dev, datapath.ProxyMarkToProxy(res.Events[len(res.Events)-1].ProxyPort), res.Out); err != nil {
					return engine.Observation{Err: err}
				}
				s.collect(&obs, &evidence, "to-proxy", hop{node: h.node, hook: datapath.FromContainer, pod: h.pod}, res)
			}
			if redirected && res.Code != datapath.TCActShot {
				obs.Evidence = strings.Join(evidence, "\n")
				return obs
			}
			if res.Code == datapath.TCActShot {
				obs.Verdict = "dropped"
				if n := len(res.Events); n > 0 {
					obs.Reason = res.Events[n-1].Reason.String()
				}
				obs.Evidence = strings.Join(evidence, "\n")
				return obs
			}
			frame = res.Out
		}
	}
	obs.Evidence = strings.Join(evidence, "\n")
	return obs
}

func (s *session) originsSuffix(cookie uint32) string {
	if o := s.cookies.Origins(cookie); len(o) > 0 {
		return " by " + strings.Join(o, ",")
	}
	return ""
}

func (s *session) flow(ev datapath.Event) engine.Flow {
	f := engine.Flow{
		Direction: ev.Direction.String(),
		Verdict:   strings.ToLower(ev.Verdict.String()),
		MatchType: ev.MatchType.String(),
		Policies:  s.cookies.Origins(ev.Cookie),
		SrcID:     ev.SrcIdentity,
		DstID:     ev.DstIdentity,
	}
	if ev.Verdict == datapath.VerdictDropped {
		f.Reason = ev.Reason.String()
	}
	return f
}

// path lists the hooks of the request and of the reply.
func (s *session) path(p engine.Probe) (there, back []hop, err error) {
	src, err := s.podHop(p.From, datapath.FromContainer)
	if err != nil {
		return nil, nil, err
	}
	dst, err := s.podHop(p.To, datapath.ToContainer)
	if err != nil {
		return nil, nil, err
	}
	srcIn, _ := s.podHop(p.From, datapath.ToContainer)
	dstOut, _ := s.podHop(p.To, datapath.FromContainer)
	for _, h := range []*hop{src, dst} {
		if h != nil {
			there = append(there, *h)
		}
	}
	for _, h := range []*hop{dstOut, srcIn} {
		if h != nil {
			back = append(back, *h)
		}
	}
	return there, back, nil
}

func (s *session) podHop(peer engine.Peer, h datapath.Hook) (*hop, error) {
	if peer.Pod == nil {
		return nil, nil
	}
	key := peer.Pod.Namespace + "/" + peer.Pod.Name
	st, ok := s.pods[key]
	if !ok {
		return nil, fmt.Errorf("pod %s is not in the cluster", key)
	}
	n, ok := s.nodes[st.node]
	if !ok {
		for _, only := range s.nodes {
			n = only
		}
	}
	if n == nil {
		return nil, fmt.Errorf("pod %s: no datapath for node %q", key, st.node)
	}
	return &hop{node: n, hook: h, pod: key}, nil
}

func (s *session) sourcePort() uint16 {
	p := s.nextSport
	s.nextSport++
	if s.nextSport > ephemeralHigh {
		s.nextSport = ephemeralLow
	}
	return p
}

// frames builds the request and, for a connect exchange, the reply.
func (s *session) frames(p engine.Probe) (packet.Spec, *packet.Spec, error) {
	sport := p.SrcPort
	if sport == 0 {
		sport = s.sourcePort()
	}
	fwd := packet.Spec{Src: p.From.IP, Dst: p.To.IP, Protocol: p.Protocol, SrcPort: sport, DstPort: p.Port}
	proto := strings.ToUpper(p.Protocol)
	isICMP := proto == "ICMP" || proto == "ICMPV6"
	if isICMP {
		fwd.SrcPort, fwd.DstPort = 0, 0
		fwd.ICMPID = sport
		fwd.ICMPType = p.ICMPType
		if fwd.ICMPType == 0 && p.Exchange != "packet" {
			fwd.ICMPType = packet.ICMPv4EchoRequest
			if proto == "ICMPV6" {
				fwd.ICMPType = packet.ICMPv6EchoRequest
			}
		}
	}
	switch p.Exchange {
	case "packet":
		fwd.Flags = p.Flags
		return fwd, nil, nil
	case "connect", "":
		rev := packet.Spec{Src: fwd.Dst, Dst: fwd.Src, Protocol: p.Protocol, SrcPort: fwd.DstPort, DstPort: fwd.SrcPort}
		switch {
		case proto == "TCP":
			fwd.Flags = []string{"SYN"}
			rev.Flags = []string{"SYN", "ACK"}
		case proto == "ICMP":
			rev.ICMPType, rev.ICMPID = packet.ICMPv4EchoReply, fwd.ICMPID
		case proto == "ICMPV6":
			rev.ICMPType, rev.ICMPID = packet.ICMPv6EchoReply, fwd.ICMPID
		}
		return fwd, &rev, nil
	}
	return fwd, nil, fmt.Errorf("exchange %q is not available in unit mode yet", p.Exchange)
}
