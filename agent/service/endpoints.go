package service

import (
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// endpoint is one EndpointSlice endpoint for one service port, with only what
// kube-proxy looks at.
type endpoint struct {
	addr      netip.Addr
	port      uint16
	node      string
	zoneHints map[string]bool
	local     bool
	// The conditions as kube-proxy reads them: ready and serving default to
	// true when absent, terminating to false.
	ready, serving, terminating bool
}

func (e endpoint) backend(terminating bool) Backend {
	return Backend{Addr: e.addr, Port: e.port, NodeName: e.node, Local: e.local, Terminating: terminating}
}

// portKey is how EndpointSlice ports meet Service ports: by the Service
// port's name and protocol. The slice's port number is the target port the
// EndpointSlice controller resolved (a named targetPort is looked up in each
// pod's container ports), so kube-proxy never reads targetPort itself.
type portKey struct {
	name     string
	protocol corev1.Protocol
}

// endpointsByPort is one service's endpoints of one family, by port.
type endpointsByPort map[portKey][]endpoint

// indexSlices groups slices by the service named in their
// kubernetes.io/service-name label; slices without it belong to no service,
// as for kube-proxy.
func indexSlices(slices []*discoveryv1.EndpointSlice) map[types.NamespacedName][]*discoveryv1.EndpointSlice {
	// Sized for one slice per service, the common case: growing it step by
	// step was most of its cost at 10k services.
	out := make(map[types.NamespacedName][]*discoveryv1.EndpointSlice, len(slices))
	for _, s := range slices {
		if s == nil {
			continue
		}
		name := s.Labels[discoveryv1.LabelServiceName]
		if name == "" {
			continue
		}
		key := types.NamespacedName{Namespace: s.Namespace, Name: name}
		out[key] = append(out[key], s)
	}
	return out
}

// collectEndpoints reads one service's slices for one family, as
// kube-proxy's EndpointSliceCache does: slices of another address type are
// ignored, ports without a name pointer or with no port number are ignored,
// an endpoint is its first address (of the right family, else ignored), and
// an address:port listed twice is kept once, preferring the local copy.
func collectEndpoints(slices []*discoveryv1.EndpointSlice, v6 bool, nodeName string) endpointsByPort {
	want := discoveryv1.AddressTypeIPv4
	if v6 {
		want = discoveryv1.AddressTypeIPv6
	}
	type dedupKey struct {
		port portKey
		ap   netip.AddrPort
	}
	seen := map[dedupKey]int{}
	out := endpointsByPort{}
	for _, s := range slices {
		if s.AddressType != want {
			continue
		}
		for _, p := range s.Ports {
			if p.Name == nil || p.Port == nil || *p.Port <= 0 || *p.Port > 65535 {
				continue
			}
			proto := corev1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			pk := portKey{*p.Name, proto}
			for _, ep := range s.Endpoints {
				if len(ep.Addresses) == 0 {
					continue
				}
				addr, err := netip.ParseAddr(ep.Addresses[0])
				if err != nil || addr.Is6() != v6 || addr.Zone() != "" {
					continue
				}
				addr = addr.Unmap()
				e := endpoint{
					addr:        addr,
					port:        uint16(*p.Port),
					ready:       ep.Conditions.Ready == nil || *ep.Conditions.Ready,
					serving:     ep.Conditions.Serving == nil || *ep.Conditions.Serving,
					terminating: ep.Conditions.Terminating != nil && *ep.Conditions.Terminating,
				}
				if ep.NodeName != nil {
					e.node = *ep.NodeName
					e.local = nodeName != "" && e.node == nodeName
				}
				if ep.Hints != nil && len(ep.Hints.ForZones) > 0 {
					e.zoneHints = map[string]bool{}
					for _, z := range ep.Hints.ForZones {
						e.zoneHints[z.Name] = true
					}
				}
				dk := dedupKey{pk, netip.AddrPortFrom(addr, e.port)}
				if i, ok := seen[dk]; ok {
					if e.local {
						out[pk][i] = e
					}
					continue
				}
				seen[dk] = len(out[pk])
				out[pk] = append(out[pk], e)
			}
		}
	}
	for _, eps := range out {
		sort.Slice(eps, func(i, j int) bool {
			if c := eps[i].addr.Compare(eps[j].addr); c != 0 {
				return c < 0
			}
			return eps[i].port < eps[j].port
		})
	}
	return out
}
