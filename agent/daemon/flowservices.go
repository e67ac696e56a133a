package daemon

import (
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/kestrelnet/kestrel/agent/service"
)

// serviceIndex names the Service behind an address and port: one of its
// frontends, or one of its backends. A flow's ends are looked up in it, so
// Hubble's source/destination_service and the service map name the
// Service a connection went to (with socket LB the datapath only ever sees
// the backend). It is replaced whole at each regeneration.
type serviceIndex map[serviceKey]string // namespace/name

type serviceKey struct {
	addr  netip.Addr
	port  uint16
	proto uint8
}

var protocolNumbers = map[corev1.Protocol]uint8{corev1.ProtocolTCP: 6, corev1.ProtocolUDP: 17, corev1.ProtocolSCTP: 132}

// buildServiceIndex indexes the state's frontends and backends. A backend
// of several Services is named by the first in the state's order
// (frontends sorted by address), so the choice is stable; host ports are
// no Services and are left out.
func buildServiceIndex(st service.State) serviceIndex {
	n := 0
	for _, f := range st.Frontends {
		n += 1 + len(f.Backends)
	}
	x := make(serviceIndex, n)
	add := func(k serviceKey, name string) {
		if _, ok := x[k]; !ok {
			x[k] = name
		}
	}
	for _, f := range st.Frontends {
		if f.Kind == service.HostPort {
			continue
		}
		proto := protocolNumbers[f.Protocol]
		name := f.Service.NamespacedName.String()
		add(serviceKey{f.Addr, f.Port, proto}, name)
		for _, b := range f.Backends {
			add(serviceKey{b.Addr, b.Port, proto}, name)
		}
	}
	return x
}

// lookup names the Service of addr:port, or "".
func (x serviceIndex) lookup(addr netip.Addr, port uint16, proto uint8) string {
	return x[serviceKey{addr.Unmap(), port, proto}]
}

// lazyServiceIndex is a State's serviceIndex, built by the first flow that
// looks something up: at 10k services the index is 100k entries, and
// building it at every regeneration delayed the services' write to the
// datapath for flows that mostly come later, if at all.
type lazyServiceIndex struct {
	once sync.Once
	st   service.State
	x    serviceIndex
}

func newLazyServiceIndex(st service.State) *lazyServiceIndex { return &lazyServiceIndex{st: st} }

// lookup names the Service of addr:port, or "".
func (l *lazyServiceIndex) lookup(addr netip.Addr, port uint16, proto uint8) string {
	l.once.Do(func() {
		l.x = buildServiceIndex(l.st)
		l.st = service.State{}
	})
	return l.x.lookup(addr, port, proto)
}
