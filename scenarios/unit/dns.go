package unit

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/agent/proxy"
	dnsproxy "github.com/kestrelnet/kestrel/agent/proxy/dns"
	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/packet"
	"github.com/kestrelnet/kestrel/scenarios/engine"
	"github.com/kestrelnet/kestrel/sim/clusterdns"
)

// openDNSProxySockets gives a test datapath the DNS proxies' UDP sockets in
// its namespace (the TCP ones are listeners beside HTTP's), so the
// programs' UDP socket lookups find them as on a node. Nothing is read:
// unit mode decides queries in-process.
func openDNSProxySockets(dp *datapath.Datapath) ([]io.Closer, error) {
	var out []io.Closer
	// Egress only: DNS rules on ingress are refused (as in Cilium).
	for _, port := range []uint16{policy.ProxyPortDNSEgress} {
		for _, network := range []string{"udp4", "udp6"} {
			var c io.Closer
			var err error
			if e := dp.InTestNamespace(func() { c, err = dnsproxy.ListenUDP(context.Background(), network, port) }); e != nil {
				err = e
			}
			if err != nil {
				for _, o := range out {
					o.Close()
				}
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// zone is the cluster DNS as of the last Sync: spec.dns.records and the
// cluster's Services.
func (s *session) zone() (*clusterdns.Zone, error) {
	c := s.cluster
	if c == nil || c.DNS == nil {
		return nil, fmt.Errorf("no cluster DNS (spec.dns)")
	}
	svcs, slices, err := engine.ServiceObjects(c)
	if err != nil {
		return nil, err
	}
	return clusterdns.NewZone(c.DNS.Records, svcs, slices), nil
}

// probeFQDN resolves the target's name through the cluster DNS as the
// pod would (its query crossing the datapath and, where DNS rules redirect
// it, the DNS proxy's decision and toFQDNs learning), then runs the probe
// to the address the name must have resolved to.
func (s *session) probeFQDN(ctx context.Context, p engine.Probe) engine.Observation {
	qtype := "A"
	if p.To.IP.Is6() {
		qtype = "AAAA"
	}
	q := engine.Probe{Scenario: p.Scenario, Name: p.Name + "/dns", From: p.From, To: *p.Resolver, Protocol: "UDP", Port: 53,
		Exchange: "request", DNS: &engine.DNSRequest{Query: p.To.FQDN, Type: qtype}}
	res := s.probeDNS(q)
	res.Evidence = fmt.Sprintf("resolve %s (%s):\n%s", p.To.FQDN, qtype, res.Evidence)
	if res.Err != nil || res.Verdict != "allowed" {
		return res
	}
	if !slices.Contains(res.Answer, p.To.IP) {
		res.Err = fmt.Errorf("%s resolved to %v, not %s", p.To.FQDN, res.Answer, p.To.IP)
		return res
	}
	p.Resolver = nil
	obs := s.Probe(ctx, p)
	obs.Flows = append(res.Flows, obs.Flows...)
	obs.Evidence = res.Evidence + "\nthen:\n" + obs.Evidence
	return obs
}

// probeDNS is a dns request: the query's first packet crosses the hooks a
// real one would; where a hook redirects it to the DNS proxy, the proxy's
// decision is made in-process by the agent's code (agent/proxy against this
// node's state and the flow's conntrack entry); an allowed query's upstream
// crosses the server's hook with the proxy's mark, the cluster DNS answers
// it, and its addresses are learned for toFQDNs (the policy recomputed and
// written) before the answer counts as released. Without a redirect the
// server answers the pod directly and nothing is learned.
func (s *session) probeDNS(p engine.Probe) engine.Observation {
	conn := p
	conn.Exchange = "connect"
	fwd, _, err := s.frames(conn)
	if err != nil {
		return engine.Observation{Err: err}
	}
	there, _, err := s.path(p)
	if err != nil {
		return engine.Observation{Err: err}
	}
	qt := dns.TypeA
	if p.DNS.Type == "AAAA" {
		qt = dns.TypeAAAA
	}
	q := new(dns.Msg)
	q.SetQuestion(p.DNS.Query, qt)
	q.Id = fwd.SrcPort // any ID; the source port keeps it distinct
	wire, err := q.Pack()
	if err != nil {
		return engine.Observation{Err: err}
	}
	var evidence []string
	obs := engine.Observation{Verdict: "allowed"}
	frame, err := packet.Build(fwd)
	if err != nil {
		return engine.Observation{Err: err}
	}
	for i, h := range there {
		res, err := h.node.dp.Run(h.hook, frame)
		if err != nil {
			return engine.Observation{Err: err}
		}
		redirect := s.collect(&obs, &evidence, "query", h, res)
		if res.Code == datapath.TCActShot {
			return s.dropped(obs, evidence, res)
		}
		if redirect == 0 {
			frame = res.Out
			continue
		}
		s.dnsThroughProxy(p, fwd, wire, h, res, redirect, there[i+1:], &obs, &evidence)
		obs.Evidence = strings.Join(evidence, "\n")
		return obs
	}
	// No proxy on the way: the server answers the pod itself.
	z, err := s.zone()
	if err != nil {
		return engine.Observation{Err: err}
	}
	ans := z.Answer(q)
	obs.Answer = dnsproxy.IPs(dnsproxy.Answers(ans))
	evidence = append(evidence, fmt.Sprintf("%s answered %s %s: %s %v (not through the DNS proxy: nothing learned)",
		p.To.Pod.Name, p.DNS.Type, p.DNS.Query, dns.RcodeToString[ans.Rcode], obs.Answer))
	obs.Evidence = strings.Join(evidence, "\n")
	return obs
}

// dnsThroughProxy finishes a query the hook h redirected to port.
func (s *session) dnsThroughProxy(p engine.Probe, fwd packet.Spec, wire []byte, h hop, res datapath.RunResult, port uint16, rest []hop,
	obs *engine.Observation, evidence *[]string) {
	dir := policy.Egress
	if h.hook == datapath.ToContainer {
		dir = policy.Ingress
		dev, _ := h.node.dp.DeviceOf(s.epIDs[h.pod])
		back, err := h.node.dp.RunMarked(datapath.FromContainer, dev, datapath.ProxyMarkToProxy(port), res.Out)
		if err != nil {
			obs.Err = err
			return
		}
		if back.Code == datapath.TCActShot {
			*obs = s.dropped(*obs, *evidence, back)
			s.collect(obs, evidence, "to-proxy", hop{node: h.node, hook: datapath.FromContainer, pod: h.pod}, back)
			return
		}
	}
	client := netip.AddrPortFrom(fwd.Src, fwd.SrcPort)
	orig := netip.AddrPortFrom(fwd.Dst, fwd.DstPort)
	table := &proxy.Table{CT: h.node.dp}
	table.Set(s.resolved, s.states[h.node.name], s.locals[h.node.name])
	conn, err := table.ResolveDNS(dir, strings.ToLower(p.Protocol), client, orig)
	if err != nil {
		obs.Err = fmt.Errorf("the %s DNS proxy on %s: %w", dir, h.node.name, err)
		return
	}
	d, req := dnsproxy.Decide(conn.Rules, wire)
	verdict := "forwarded"
	if !d.Allowed {
		verdict = "dropped"
	}
	obs.Flows = append(obs.Flows, engine.Flow{Direction: dir.String(), Verdict: verdict, Policies: conn.Policies,
		SrcID: conn.SrcIdentity, DstID: conn.DstIdentity})
	*evidence = append(*evidence, fmt.Sprintf("%s DNS proxy@%s: %s %s over %s %s by %s", dir, h.node.name, d.QType, d.Query, p.Protocol,
		map[bool]string{true: "allowed", false: "denied (REFUSED)"}[d.Allowed], strings.Join(conn.Policies, ",")))
	if !d.Allowed {
		obs.Verdict = "l7-denied"
		return
	}
	// The proxy's upstream query to the original server, with the proxy's
	// mark, through the server pod's hook.
	var next *hop
	mark := datapath.ProxyMarkIngress()
	if dir == policy.Ingress {
		next = &hop{node: h.node, hook: datapath.ToContainer, pod: h.pod}
	} else if len(rest) > 0 {
		next = &rest[0]
		if mark, err = datapath.ProxyMarkEgress(conn.SrcIdentity); err != nil {
			obs.Err = err
			return
		}
	}
	if next != nil {
		up := fwd
		// Over TCP the upstream keeps the client's address and port, as
		// the HTTP proxy's does (l7.go); over UDP, and to a pod of this
		// node, it leaves from the node's address.
		tcp := strings.EqualFold(up.Protocol, "TCP")
		if !tcp || (dir == policy.Egress && next.node == h.node) {
			up.SrcPort = s.sourcePort()
			for _, a := range s.nodeIPs[h.node.name] {
				if a.Is4() == fwd.Dst.Is4() {
					up.Src = a
				}
			}
		}
		if tcp {
			up.Flags = []string{"SYN"}
		}
		upFrame, err := packet.Build(up)
		if err != nil {
			obs.Err = err
			return
		}
		var r datapath.RunResult
		dev, _ := next.node.dp.DeviceOf(s.epIDs[next.pod])
		if next.node == h.node {
			r, err = next.node.dp.RunMarked(datapath.ToContainer, dev, uint32(mark), upFrame)
		} else {
			r, err = next.node.dp.RunOn(datapath.ToContainer, dev, upFrame)
		}
		if err != nil {
			obs.Err = err
			return
		}
		if s.collect(obs, evidence, "upstream", *next, r) != 0 && r.Code != datapath.TCActShot {
			obs.Err = fmt.Errorf("the DNS server %s redirects DNS to its own ingress proxy: not built in unit mode", next.pod)
			return
		}
		if r.Code == datapath.TCActShot {
			*obs = s.dropped(*obs, *evidence, r)
			return
		}
	}
	z, err := s.zone()
	if err != nil {
		obs.Err = err
		return
	}
	ans := z.Answer(req)
	answers := dnsproxy.Answers(ans)
	obs.Answer = dnsproxy.IPs(answers)
	grew := false
	for _, a := range answers {
		if s.fqdns.Update(conn.EndpointID, a.Name, a.IPs, a.TTL) {
			grew = true
		}
	}
	learned := "nothing new learned"
	if grew {
		// As the agent does before the proxy releases the answer.
		if err := s.Sync(context.Background(), s.cluster); err != nil {
			obs.Err = fmt.Errorf("toFQDNs: applying %v: %w", obs.Answer, err)
			return
		}
		learned = "learned for toFQDNs before the answer was released"
	}
	*evidence = append(*evidence, fmt.Sprintf("answer %s %v (%s)", dns.RcodeToString[ans.Rcode], obs.Answer, learned))
}
