package datapathstate

import (
	"net/netip"

	"github.com/kestrelnet/kestrel/agent/service"
	"github.com/kestrelnet/kestrel/datapath"
)

// lbFrontendKey names a datapath service: one frontend address, port and
// protocol.
type lbFrontendKey struct {
	frontend netip.AddrPort
	protocol uint8
	scope    uint8
}

// ServiceIDs gives each frontend a datapath service id that stays put while
// the frontend exists, so its flows keep their reverse translation. The zero
// value is ready to use.
type ServiceIDs struct {
	ids  map[lbFrontendKey]uint32
	next uint32
}

func (a *ServiceIDs) idFor(k lbFrontendKey, live map[lbFrontendKey]bool) uint32 {
	if a.ids == nil {
		a.ids = map[lbFrontendKey]uint32{}
	}
	live[k] = true
	if id, ok := a.ids[k]; ok {
		return id
	}
	a.next++
	a.ids[k] = a.next
	return a.next
}

func (a *ServiceIDs) forgetAllBut(live map[lbFrontendKey]bool) {
	for k := range a.ids {
		if !live[k] {
			delete(a.ids, k)
		}
	}
}

var protocols = map[string]uint8{"TCP": datapath.ProtoTCP, "UDP": datapath.ProtoUDP, "SCTP": datapath.ProtoSCTP}

// Services turns the load-balancing state into the datapath's services.
// ClusterIPs are served to the node's pods; NodePorts, LoadBalancer IPs,
// externalIPs and hostPorts also to traffic entering by the node's device
// (External). Under externalTrafficPolicy Local such a frontend is two
// entries: the external one with the local endpoints only (or none: drop),
// and the internal one with every endpoint for the node's own pods, which
// kube-proxy short-circuits the same way.
func Services(st service.State, ids *ServiceIDs) []datapath.Service {
	out := make([]datapath.Service, 0, len(st.Frontends))
	live := make(map[lbFrontendKey]bool, len(st.Frontends))
	for _, f := range st.Frontends {
		out = appendEntries(out, f, func(k lbFrontendKey) uint32 { return ids.idFor(k, live) })
	}
	ids.forgetAllBut(live)
	return out
}

// ServicesDelta is Services for a Build's difference (service.Cache.Delta):
// the entries of the added frontends, to write, and the ids of the removed
// frontends' entries that no added one has, to remove, which are forgotten.
// Ids stay as Services gives them.
func ServicesDelta(d service.Delta, ids *ServiceIDs) (upsert []datapath.Service, remove []uint32) {
	live := make(map[lbFrontendKey]bool, len(d.Added))
	for _, f := range d.Added {
		upsert = appendEntries(upsert, f, func(k lbFrontendKey) uint32 { return ids.idFor(k, live) })
	}
	for _, f := range d.Removed {
		appendEntries(nil, f, func(k lbFrontendKey) uint32 {
			if id, ok := ids.ids[k]; ok && !live[k] {
				remove = append(remove, id)
				delete(ids.ids, k)
			}
			return 0
		})
	}
	return upsert, remove
}

// appendEntries appends a frontend's datapath services, their ids from id.
func appendEntries(out []datapath.Service, f service.Frontend, id func(lbFrontendKey) uint32) []datapath.Service {
	proto, ok := protocols[string(f.Protocol)]
	// A NodePort on the unspecified address (no node address of the
	// family is known) has nothing to match packets against.
	if !ok || f.Addr.IsUnspecified() {
		return out
	}
	front := netip.AddrPortFrom(f.Addr, f.Port)
	entry := func(scope datapath.ServiceScope, action service.Action, backends []service.Backend) datapath.Service {
		s := datapath.Service{Frontend: front, Protocol: proto, AffinityTimeout: f.AffinityTimeout,
			External: f.Kind != service.ClusterIP, Scope: scope, SourceRanges: f.SourceRanges}
		s.ID = id(lbFrontendKey{front, proto, uint8(scope)})
		switch action {
		case service.Reject:
			s.Reject = true
		case service.Forward:
			if len(backends) > 0 {
				s.Backends = make([]netip.AddrPort, 0, len(backends))
			}
			for _, b := range backends {
				s.Backends = append(s.Backends, netip.AddrPortFrom(b.Addr, b.Port))
			}
		}
		return s
	}
	if f.Kind.External() && f.ExternalPolicyLocal && f.LocalOriginBackends != nil {
		internal := service.Forward
		if len(f.LocalOriginBackends) == 0 {
			internal = service.Reject
		}
		return append(out, entry(datapath.ScopeExternal, f.Action, f.Backends), entry(datapath.ScopeInternal, internal, f.LocalOriginBackends))
	}
	return append(out, entry(datapath.ScopeInternal, f.Action, f.Backends))
}
