package sim

// Probes on a PodExec backend (any cluster, reached only through its API): each
// runs in a process of the source pod's container, which `kestrel sim connect
// --batch` in the workload image is; the probes of a batch from one pod share
// one process. Destinations are mapped to the live pod addresses (addrmap.go).

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/kestrelnet/kestrel/scenarios/engine"
	"github.com/kestrelnet/kestrel/sim/workload"
)

// Reasons a probe is not run on a PodExec backend.
const (
	skipNotFromPod = "probes from a node or from the world need access to the nodes; this mode reaches the cluster only through its API"
	skipExecICMP   = "ICMP probes are not run in this mode yet (the workload binary sends no echo requests)"
	skipExecL7     = "request probes (HTTP, TLS, Kafka, DNS) are not run in this mode yet"
)

// execRequest is the request a probe runs in its source pod, or the
// observation when it does not run.
func (s *session) execRequest(p engine.Probe) (workload.ConnectRequest, *engine.Observation) {
	skip := func(why string) (workload.ConnectRequest, *engine.Observation) {
		return workload.ConnectRequest{}, &engine.Observation{Skipped: why}
	}
	switch {
	case p.Exchange == "packet":
		return skip(skipPacket)
	case strings.EqualFold(p.Protocol, "SCTP"):
		return skip(sctpSkipReason())
	case p.Exchange == "request", p.DNS != nil, p.Resolver != nil:
		return skip(skipExecL7)
	case p.From.Pod == nil:
		return skip(skipNotFromPod)
	}
	proto := strings.ToLower(p.Protocol)
	switch proto {
	case "", "tcp":
		proto = "tcp"
	case "udp":
	case "icmp", "icmpv6":
		return skip(skipExecICMP)
	default:
		return skip(p.Protocol + " probes are not available in this mode")
	}
	to := s.addrs.live(p.To.IP)
	if p.To.Node != "" {
		ip, err := s.nodes.hostIP(s.r.backend, p.To)
		if err != nil {
			return workload.ConnectRequest{}, &engine.Observation{Err: err}
		}
		to = ip
	}
	if !s.r.backend.Routed(to) {
		return workload.ConnectRequest{}, &engine.Observation{Skipped: skipNoOutside, Evidence: "destination " + to.String()}
	}
	live, ok := s.r.live.pods[p.From.Pod.Namespace+"/"+p.From.Pod.Name]
	if !ok || live.uid == "" {
		return workload.ConnectRequest{}, &engine.Observation{Err: fmt.Errorf("pod %s/%s is not running", p.From.Pod.Namespace, p.From.Pod.Name)}
	}
	return workload.ConnectRequest{Protocol: proto, Target: net.JoinHostPort(to.String(), strconv.Itoa(int(p.Port))),
		Msg: "kestrel-probe\n", Timeout: probeTimeout}, nil
}

// execObservation reads a connect result as the netns probes do; the
// probe's flows are read after (execFlows).
func (s *session) execObservation(p engine.Probe, req workload.ConnectRequest, res workload.ConnectResult) engine.Observation {
	where := fmt.Sprintf("from pod %s/%s (a process in its container)", p.From.Pod.Namespace, p.From.Pod.Name)
	proto := strings.ToUpper(req.Protocol)
	var o engine.Observation
	switch {
	case res.Err == "":
		answer := strings.TrimSpace(res.Answer)
		o.Verdict = "allowed"
		o.Evidence = fmt.Sprintf("%s: %s %s answered %q", where, proto, req.Target, answer)
		o.Backend, o.SourceIP = s.readAnswer(p, s.liveAnswer(answer))
	case res.Refused:
		o.Verdict, o.Evidence = "rejected", fmt.Sprintf("%s: %s %s: %s", where, proto, req.Target, res.Err)
	case res.Timeout:
		o.Verdict, o.Evidence = "dropped", fmt.Sprintf("%s: %s %s: %s", where, proto, req.Target, res.Err)
	default:
		o.Verdict = "error"
		o.Err = fmt.Errorf("%s: %s %s: %s", where, proto, req.Target, res.Err)
		return o
	}
	return o
}

// execFlows are the flows of probe p, sent at since (this machine's
// monotonic clock), in the live addresses the cluster's agents report:
// the source pod's of the target's family, the target's, and for a service
// the live addresses of its backends.
func (s *session) execFlows(p engine.Probe, req workload.ConnectRequest, since uint64) probeFlows {
	q := probeFlows{since: since, port: p.Port, protocol: protoTCP}
	if req.Protocol == "udp" {
		q.protocol = protoUDP
	}
	if to, err := netip.ParseAddrPort(req.Target); err == nil {
		q.dst = to.Addr()
	}
	live := s.r.live.pods[p.From.Pod.Namespace+"/"+p.From.Pod.Name]
	for _, ip := range live.ips {
		if a, err := netip.ParseAddr(ip); err == nil && a.Is4() == q.dst.Is4() {
			q.src = a
			break
		}
	}
	var backends []netip.AddrPort
	switch {
	case p.To.Service != "":
		backends = s.frontends[frontendKey(p)]
	case p.To.Frontend != "":
		backends = s.svcBackends[p.To.Frontend]
	}
	for _, b := range backends {
		q.backends = append(q.backends, netip.AddrPortFrom(s.addrs.live(b.Addr()), b.Port()))
	}
	return q
}

// liveAnswer maps the client address in a server's answer ("<who> <port>
// <client>") back to the scenario's.
func (s *session) liveAnswer(answer string) string {
	f := strings.Fields(answer)
	if len(f) > 2 {
		if a, err := netip.ParseAddr(f[2]); err == nil {
			f[2] = s.addrs.scenario(a).String()
		}
	}
	return strings.Join(f, " ")
}

// execBatch runs probes on a PodExec backend: one process per source pod,
// a few pods at once.
func (s *session) execBatch(ctx context.Context, pe PodExec, ps []engine.Probe) []engine.Observation {
	out := make([]engine.Observation, len(ps))
	type group struct {
		ns, pod string
		idx     []int
		reqs    []workload.ConnectRequest
	}
	groups := map[string]*group{}
	var order []string
	for i, p := range ps {
		req, o := s.execRequest(p)
		if o != nil {
			out[i] = *o
			continue
		}
		key := p.From.Pod.Namespace + "/" + p.From.Pod.Name
		g, ok := groups[key]
		if !ok {
			g = &group{ns: p.From.Pod.Namespace, pod: p.From.Pod.Name}
			groups[key] = g
			order = append(order, key)
		}
		g.idx = append(g.idx, i)
		g.reqs = append(g.reqs, req)
	}
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, key := range order {
		g := groups[key]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			since := monotonicNow()
			res, err := pe.Connect(ctx, g.ns, g.pod, g.reqs)
			done := monotonicNow()
			if err == nil && len(res) != len(g.reqs) {
				err = fmt.Errorf("%d results for %d requests", len(res), len(g.reqs))
			}
			for j, i := range g.idx {
				if err != nil {
					out[i] = engine.Observation{Err: fmt.Errorf("probe from pod %s: %w", key, err)}
					continue
				}
				out[i] = s.execObservation(ps[i], g.reqs[j], res[j])
				if out[i].Err == nil {
					// The same flow matching and drop reasons as sim's
					// and kind's probes (flows.go); where no agent is
					// read, EventsUnobserved and why. The batch's
					// packets went out any time until its answer.
					q := s.execFlows(ps[i], g.reqs[j], since)
					q.until = done
					s.r.flows.observe(ctx, q, &out[i])
				}
			}
		}()
	}
	wg.Wait()
	return out
}
