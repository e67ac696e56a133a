package sim

import (
	"net/netip"

	"github.com/kestrelnet/kestrel/sim/network"
)

// OutsideHost is a host beside the cluster's nodes that stands for the world:
// it holds world servers' and world sources' addresses, and a socket of it
// carrying ViaMark(i) enters the cluster at the scenario's i-th node. The
// nodes route the addresses it holds to it, so nothing a probe sends leaves
// the machine.
type OutsideHost interface {
	// Netns is its network namespace: a name under /var/run/netns, or a path.
	Netns() string
	// AddAddr gives it world address a (and makes the nodes route a to it);
	// DelAddr takes a away again (a missing one is no error).
	AddAddr(a netip.Addr) error
	DelAddr(a netip.Addr) error
	// ViaMark is the socket mark (SO_MARK) whose packets go to node i (from 1).
	ViaMark(i int) uint32
}

// WorldBackend is a Backend without sim's outside host (Outside false) that
// has an outside host of its own: kind's is a container on the nodes' docker
// network (scenarios/kindmode).
type WorldBackend interface {
	OutsideHost() (OutsideHost, error)
}

// simOutside is sim's outside host (sim/network/outside.go).
type simOutside struct{ cluster string }

func (o simOutside) Netns() string              { return network.OutsideNetns(o.cluster) }
func (o simOutside) AddAddr(a netip.Addr) error { return network.AddWorldAddr(o.cluster, a) }
func (o simOutside) DelAddr(a netip.Addr) error { return network.DelWorldAddr(o.cluster, a) }
func (o simOutside) ViaMark(i int) uint32       { return network.ViaMark(i) }

// hasOutside reports whether the backend has an outside host.
func (r *Runner) hasOutside() bool {
	if r.backend.Outside() {
		return true
	}
	_, ok := r.backend.(WorldBackend)
	return ok
}

// outsideHost is the backend's outside host (brought up by the backend when
// it first is needed).
func (r *Runner) outsideHost(what string) (OutsideHost, error) {
	if r.backend.Outside() {
		return simOutside{r.name}, nil
	}
	if wb, ok := r.backend.(WorldBackend); ok {
		return wb.OutsideHost()
	}
	return nil, errNoOutside(r.backend, what)
}

// worldLocked is the session's world, made on first use; the caller holds worldMu.
func (s *session) worldLocked(what string) (*world, error) {
	if s.world != nil {
		return s.world, nil
	}
	h, err := s.r.outsideHost(what)
	if err != nil {
		return nil, err
	}
	s.world = newWorld(h)
	return s.world, nil
}
