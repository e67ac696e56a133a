package datapathstate

import (
	"fmt"
	"net/netip"

	"github.com/kestrelnet/kestrel/agent/service"
	"github.com/kestrelnet/kestrel/datapath"
)

// lbFrontendKey names a datapath service: one frontend address, port and
// protocol.
type lbFrontendKey struct {
	frontend string
	protocol uint8
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

// Services turns the load-balancing state into the services the pods'
// programs translate: the ClusterIP frontends. NodePorts, LoadBalancer IPs,
// externalIPs and hostPorts need the program on the node's own device, which
// does not exist yet; a pod's packet to them is not translated. (The
// datapath rejects unknown ports on a frontend address that rejects, which is
// kube-proxy's rule for ClusterIPs only: a node IP must not become one.)
func Services(st service.State, ids *ServiceIDs) []datapath.Service {
	var out []datapath.Service
	live := map[lbFrontendKey]bool{}
	for _, f := range st.Frontends {
		if f.Kind != service.ClusterIP {
			continue
		}
		proto, ok := map[string]uint8{"TCP": datapath.ProtoTCP, "UDP": datapath.ProtoUDP, "SCTP": datapath.ProtoSCTP}[string(f.Protocol)]
		if !ok {
			continue
		}
		s := datapath.Service{Frontend: netip.AddrPortFrom(f.Addr, f.Port), Protocol: proto, AffinityTimeout: f.AffinityTimeout}
		s.ID = ids.idFor(lbFrontendKey{fmt.Sprint(s.Frontend), proto}, live)
		switch f.Action {
		case service.Reject:
			s.Reject = true
		case service.Forward:
			for _, b := range f.Backends {
				s.Backends = append(s.Backends, netip.AddrPortFrom(b.Addr, b.Port))
			}
		}
		out = append(out, s)
	}
	ids.forgetAllBut(live)
	return out
}
