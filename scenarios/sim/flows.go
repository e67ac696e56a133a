package sim

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/scenarios/engine"
)

// flowLatency is how long after a packet its flow is surely in the agents'
// buffers: the datapath wakes an agent's reader at 32 pending events, and the
// reader polls every 100 ms otherwise.
const flowLatency = 150 * time.Millisecond

// flowKeep is how long gathered flows are kept for matching.
const flowKeep = time.Minute

// flowLog gathers the flows every node's agent reports (GET /v1/flows), so a
// probe's drop reason and flows can be checked as in unit mode.
type flowLog struct {
	agents func(context.Context) ([]Agent, error) // Runner.agents

	mu        sync.Mutex
	cursors   map[string]flowCursor // by Agent.Name
	flows     []api.Flow
	refreshed uint64 // monotonic ns when the last complete refresh began
}

// flowCursor is how far the runner has read one agent's flows.
type flowCursor struct {
	instance string
	seq      uint64
}

func newFlowLog(agents func(context.Context) ([]Agent, error)) *flowLog {
	return &flowLog{agents: agents, cursors: map[string]flowCursor{}}
}

// readFlows reads an agent's flows after seq, their times on this machine's
// CLOCK_MONOTONIC: an agent with another clock gives its own with the answer
// (nowNs), which is taken as read when the answer arrived. A flow then seems
// later than it was by at most the round trip, never earlier, so a probe
// does not miss its first packets; an earlier probe's packets between the
// same ends are a Sync or a timeout earlier, far more than a round trip.
func readFlows(ctx context.Context, a Agent, seq uint64) (api.Flows, error) {
	got, err := a.Client.Flows(ctx, seq)
	arrived := monotonicNow()
	if err != nil || !a.OtherClock {
		return got, err
	}
	if got.NowNs == 0 {
		return got, fmt.Errorf("agent %s gives no clock with its flows (nowNs): their times cannot be placed", a.Name)
	}
	shift := int64(got.NowNs) - int64(arrived)
	for i := range got.Flows {
		got.Flows[i].TimeNs = uint64(int64(got.Flows[i].TimeNs) - shift)
	}
	return got, nil
}

// monotonicNow is CLOCK_MONOTONIC in ns, the clock of bpf_ktime_get_ns.
func monotonicNow() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// refresh reads new flows from every agent unless a refresh that began at or
// after notBefore already did. It fails if an agent does not answer.
func (l *flowLog) refresh(ctx context.Context, notBefore uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refreshed >= notBefore {
		return nil
	}
	began := monotonicNow()
	agents, err := l.agents(ctx)
	if err != nil {
		return err
	}
	for _, a := range agents {
		cur := l.cursors[a.Name]
		got, err := readFlows(ctx, a, cur.seq)
		if err == nil && got.Instance != cur.instance && cur.seq > 0 { // a restarted agent counts afresh
			got, err = readFlows(ctx, a, 0)
		}
		if err != nil {
			return fmt.Errorf("flows: %w", err)
		}
		l.cursors[a.Name] = flowCursor{instance: got.Instance, seq: got.Next}
		l.flows = append(l.flows, got.Flows...)
	}
	var cut uint64
	if began > uint64(flowKeep) {
		cut = began - uint64(flowKeep)
	}
	keep := l.flows[:0]
	for _, f := range l.flows {
		if f.TimeNs >= cut {
			keep = append(keep, f)
		}
	}
	l.flows = keep
	l.refreshed = began
	return nil
}

// probeFlows are the flows of one probe's packets, both ways.
type probeFlows struct {
	src, dst netip.Addr
	protocol uint8
	port     uint16 // destination port; ICMP probes match on addresses only
	since    uint64 // monotonic ns when the probe began
	// until is when it ended, where its packets may have been sent long
	// after since (a batch of probes exec'd in a pod: execprobe.go); 0: at
	// since, as a probe from this machine sends its first packet at once.
	until uint64
	// backends, for a probe to a service, are the endpoints it may be
	// translated to: flows past the translation carry one of them.
	backends []netip.AddrPort
	// masq are the addresses a node may give the source on its way to a
	// backend (the via node's, for a world source it masquerades): flows
	// past that translation carry one of them.
	masq []netip.Addr
}

func (q probeFlows) matches(f api.Flow) bool {
	if f.Protocol != q.protocol || f.TimeNs < q.since {
		return false
	}
	src, dst := f.Src == q.src.String(), f.Dst == q.dst.String()
	back := f.Src == q.dst.String() && f.Dst == q.src.String()
	if q.protocol == protoICMP || q.protocol == protoICMPv6 {
		return src && dst || back
	}
	if src && dst && f.DstPort == q.port || back && f.SrcPort == q.port {
		return true
	}
	for _, src := range append([]netip.Addr{q.src}, q.masq...) {
		for _, b := range q.backends {
			if f.Src == src.String() && f.Dst == b.Addr().String() && f.DstPort == b.Port() ||
				f.Src == b.Addr().String() && f.SrcPort == b.Port() && f.Dst == src.String() {
				return true
			}
		}
	}
	return false
}

const (
	protoICMP = 1
	protoTCP  = 6
	protoUDP  = 17
	// protoICMPv6 flows include neighbour discovery, which never matches: it
	// goes between a pod and its gateway or a multicast address, not between
	// the probe's two ends.
	protoICMPv6 = 58
)

// observe fills o's flows and drop reason from what the agents reported for
// q, waiting until the probe's packets have had time to be reported.
func (l *flowLog) observe(ctx context.Context, q probeFlows, o *engine.Observation) {
	last := max(q.since, q.until) + uint64(flowLatency)
	if wait := time.Duration(last) - time.Duration(monotonicNow()); wait > 0 {
		time.Sleep(wait)
	}
	if err := l.refresh(ctx, last); err != nil {
		o.EventsUnobserved = true
		if errors.Is(err, ErrNoAgents) {
			o.Evidence += "\nflows: not read (" + err.Error() + "): verdicts alone are compared"
		} else {
			o.Evidence += "\nflows unavailable: " + err.Error()
		}
		return
	}
	l.mu.Lock()
	var lines []string
	for _, f := range l.flows {
		if !q.matches(f) {
			continue
		}
		ef := engine.Flow{Direction: f.Direction, Verdict: f.Verdict, Reason: f.Reason, MatchType: f.MatchType,
			Policies: f.Policies, SrcID: f.SrcIdentity, DstID: f.DstIdentity}
		o.Flows = append(o.Flows, ef)
		if f.Verdict == "dropped" && o.Reason == "" {
			o.Reason = f.Reason
		}
		lines = append(lines, describeFlow(f))
	}
	l.mu.Unlock()
	if len(lines) > 0 {
		o.Evidence += "\nflows:\n" + strings.Join(lines, "\n")
	}
}

func describeFlow(f api.Flow) string {
	s := fmt.Sprintf("%s %s %s: %s:%d -> %s:%d proto=%d id %d->%d ct=%s match=%s",
		f.Node, f.Direction, f.Verdict, f.Src, f.SrcPort, f.Dst, f.DstPort, f.Protocol, f.SrcIdentity, f.DstIdentity, f.CT, f.MatchType)
	if f.Reason != "" {
		s += " reason=" + f.Reason
	}
	if len(f.Policies) > 0 {
		s += " by " + strings.Join(f.Policies, ",")
	}
	if f.L7 != nil && f.L7.HTTP != nil {
		s += fmt.Sprintf(" http %s %s -> %d", f.L7.HTTP.Method, f.L7.HTTP.URL, f.L7.HTTP.Code)
	}
	return s
}
