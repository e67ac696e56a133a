package daemon

import (
	"context"
	"errors"
	"strings"

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
	f := api.Flow{
		TimeNs:      uint64(ev.Time),
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
	}
	d.flowMu.Lock()
	d.flows.add(f)
	d.flowMu.Unlock()
	d.metrics.observeFlow(ev)
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
