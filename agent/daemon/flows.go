package daemon

import (
	"context"
	"errors"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/datapath"
)

// FlowCapacity is how many flows the agent keeps for API readers; older ones
// are overwritten (and counted as lost for a reader that had not asked yet).
const FlowCapacity = 16384

// flowRing keeps the most recent flows in order.
type flowRing struct {
	instance string     // tells this agent's numbering from an earlier one's
	buf      []api.Flow // buf[(seq-1) % cap] holds flow seq
	last     uint64     // seq of the newest flow (0: none yet)
}

func (r *flowRing) add(f api.Flow) {
	if r.buf == nil {
		r.buf = make([]api.Flow, FlowCapacity)
	}
	r.last++
	f.Seq = r.last
	r.buf[(r.last-1)%FlowCapacity] = f
}

// since returns the kept flows after seq, oldest first.
func (r *flowRing) since(seq uint64) api.Flows {
	out := api.Flows{Instance: r.instance, Flows: []api.Flow{}, Next: r.last}
	if seq >= r.last {
		return out
	}
	first := seq + 1
	if r.last > FlowCapacity && first <= r.last-FlowCapacity {
		out.Lost = r.last - FlowCapacity + 1 - first
		first = r.last - FlowCapacity + 1
	}
	for s := first; s <= r.last; s++ {
		out.Flows = append(out.Flows, r.buf[(s-1)%FlowCapacity])
	}
	return out
}

// RecordFlow keeps one datapath event as a flow, naming its policies.
func (d *Daemon) RecordFlow(ev datapath.Event) {
	peers := d.peers.Load()
	f := api.Flow{
		TimeNs:      uint64(ev.Time),
		TimeUnixNs:  int64(ev.Time) + d.monoToUnix,
		TCPFlags:    ev.TCPFlags,
		IsReply:     ev.CT == datapath.CTReply,
		SrcPeer:     peers.peer(ev.Src, ev.SrcIdentity),
		DstPeer:     peers.peer(ev.Dst, ev.DstIdentity),
		Node:        d.cfg.Node,
		Src:         ev.Src.String(),
		Dst:         ev.Dst.String(),
		SrcPort:     ev.SrcPort,
		DstPort:     ev.DstPort,
		Protocol:    ev.Protocol,
		Direction:   ev.Direction.String(),
		Verdict:     strings.ToLower(ev.Verdict.String()),
		MatchType:   ev.MatchType.String(),
		CT:          ev.CT.String(),
		EndpointID:  ev.EndpointID,
		SrcIdentity: ev.SrcIdentity,
		DstIdentity: ev.DstIdentity,
		Policies:    d.cookies.Origins(ev.Cookie),
	}
	if ev.Verdict == datapath.VerdictDropped {
		f.Reason = ev.Reason.String()
		f.ReasonCode = uint8(ev.Reason)
		if f.Reason == "POLICY_DENIED" {
			f.EnforcedBy = peers.enforcers(ev.EndpointID, ev.Direction)
		}
	}
	if svcs := d.flowServices.Load(); svcs != nil {
		f.SrcPeer.Service = svcs.lookup(ev.Src, ev.SrcPort, ev.Protocol)
		f.DstPeer.Service = svcs.lookup(ev.Dst, ev.DstPort, ev.Protocol)
	}
	d.keepFlow(f)
	d.metrics.observeFlow(f, d.cfg.ClusterName)
}

// FlowsAfter returns the kept flows after seq, and a channel closed when
// the next flow arrives (for readers that follow).
func (d *Daemon) FlowsAfter(seq uint64) (api.Flows, <-chan struct{}) {
	d.flowMu.Lock()
	defer d.flowMu.Unlock()
	return d.flows.since(seq), d.flowAdded
}

// FlowStats are the ring's figures for Hubble's ServerStatus.
func (d *Daemon) FlowStats() (kept, capacity, seen uint64, uptime time.Duration) {
	d.flowMu.Lock()
	defer d.flowMu.Unlock()
	return min(d.flows.last, FlowCapacity), FlowCapacity, d.flows.last, time.Since(d.startTime)
}

// NodeName is the node this agent serves.
func (d *Daemon) NodeName() string { return d.cfg.Node }

// monotonicOffset is Unix time minus CLOCK_MONOTONIC (which bpf_ktime_get_ns
// reads), so datapath times can be shown as wall-clock times.
func monotonicOffset() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return time.Now().UnixNano() - ts.Nano()
}

// Flows implements api.FlowSource.
func (d *Daemon) Flows(since uint64) api.Flows {
	d.flowMu.Lock()
	defer d.flowMu.Unlock()
	return d.flows.since(since)
}

// ReadFlows records every event read until read fails (the datapath closed)
// or ctx ends.
func (d *Daemon) ReadFlows(ctx context.Context, read func() (datapath.Event, error)) {
	for ctx.Err() == nil {
		ev, err := read()
		if err != nil {
			if !errors.Is(err, context.Canceled) && ctx.Err() == nil {
				d.log.Warn("flow events stopped", "err", err)
			}
			return
		}
		d.RecordFlow(ev)
	}
}

// keepFlow adds f to the ring and wakes the readers that follow it.
func (d *Daemon) keepFlow(f api.Flow) {
	d.flowMu.Lock()
	d.flows.add(f)
	if d.flowAdded != nil { // nil only in a Daemon built by hand, which no one follows
		close(d.flowAdded)
	}
	d.flowAdded = make(chan struct{})
	d.flowMu.Unlock()
}
