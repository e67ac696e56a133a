package engine

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// ServiceObjects are the cluster's Services and EndpointSlices as a cluster
// would hold them: the objects as written, plus, for every Service with a
// selector and no EndpointSlice written for it, the slices the EndpointSlice
// controller would make from the pods. Runners without a controller (unit
// mode) use it; live modes have the real one.
func ServiceObjects(c *Cluster) ([]*corev1.Service, []*discoveryv1.EndpointSlice, error) {
	var svcs []*corev1.Service
	var eps []*discoveryv1.EndpointSlice
	written := map[string]bool{} // "ns/service" with a slice written for it
	for _, m := range c.Manifests {
		ns := m.Namespace
		if ns == "" {
			ns = "default"
		}
		switch m.Kind {
		case "Service":
			svc := &corev1.Service{}
			if err := json.Unmarshal(m.JSON, svc); err != nil {
				return nil, nil, fmt.Errorf("%s: Service %s: %v", m.Source, m.Name, err)
			}
			svc.Namespace = ns
			svcs = append(svcs, svc)
		case "EndpointSlice":
			s := &discoveryv1.EndpointSlice{}
			if err := json.Unmarshal(m.JSON, s); err != nil {
				return nil, nil, fmt.Errorf("%s: EndpointSlice %s: %v", m.Source, m.Name, err)
			}
			s.Namespace = ns
			eps = append(eps, s)
			if name := s.Labels[discoveryv1.LabelServiceName]; name != "" {
				written[ns+"/"+name] = true
			}
		}
	}
	for _, svc := range svcs {
		if len(svc.Spec.Selector) == 0 || written[svc.Namespace+"/"+svc.Name] {
			continue
		}
		eps = append(eps, deriveSlices(svc, c.Pods)...)
	}
	return svcs, eps, nil
}

// deriveSlices is what the EndpointSlice controller makes for a service with
// a selector: one endpoint per running pod of the namespace that matches it
// and has a node and an address of the slice's family, with the service's
// target ports resolved against the pod's container ports (a named port the
// pod lacks is left out for that pod); pods that resolve to different ports
// go to different slices.
func deriveSlices(svc *corev1.Service, pods []*corev1.Pod) []*discoveryv1.EndpointSlice {
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	families := []discoveryv1.AddressType{}
	for _, ip := range append([]string{svc.Spec.ClusterIP}, svc.Spec.ClusterIPs...) {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			continue
		}
		f := discoveryv1.AddressTypeIPv4
		if a.Is6() {
			f = discoveryv1.AddressTypeIPv6
		}
		if !slices.Contains(families, f) {
			families = append(families, f)
		}
	}
	var out []*discoveryv1.EndpointSlice
	bySig := map[string]*discoveryv1.EndpointSlice{}
	for _, pod := range pods {
		if pod.Namespace != svc.Namespace || !sel.Matches(labels.Set(pod.Labels)) ||
			pod.Spec.NodeName == "" || pod.Status.Phase != corev1.PodRunning || pod.DeletionTimestamp != nil {
			continue
		}
		ports := endpointPorts(svc, pod)
		for _, fam := range families {
			addr := ""
			for _, ip := range pod.Status.PodIPs {
				if a, err := netip.ParseAddr(ip.IP); err == nil && a.Is6() == (fam == discoveryv1.AddressTypeIPv6) {
					addr = a.String()
					break
				}
			}
			if addr == "" {
				continue
			}
			sig := string(fam) + "|" + portsSignature(ports)
			s := bySig[sig]
			if s == nil {
				s = &discoveryv1.EndpointSlice{
					TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
					ObjectMeta: metav1.ObjectMeta{
						Namespace: svc.Namespace,
						Name:      fmt.Sprintf("%s-derived-%d", svc.Name, len(out)+1),
						Labels: map[string]string{
							discoveryv1.LabelServiceName: svc.Name,
							discoveryv1.LabelManagedBy:   "kestrel.dev/scenario-engine",
						},
					},
					AddressType: fam,
					Ports:       ports,
				}
				bySig[sig] = s
				out = append(out, s)
			}
			yes, no := true, false
			node := pod.Spec.NodeName
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{addr},
				Conditions: discoveryv1.EndpointConditions{Ready: &yes, Serving: &yes, Terminating: &no},
				NodeName:   &node,
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name},
			})
		}
	}
	return out
}

// endpointPorts resolves a service's ports for one pod: a numeric target port
// (or none: the service port) as is, a named one through the pod's container
// port of that name and protocol.
func endpointPorts(svc *corev1.Service, pod *corev1.Pod) []discoveryv1.EndpointPort {
	var out []discoveryv1.EndpointPort
	for _, sp := range svc.Spec.Ports {
		proto := sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		port := sp.TargetPort.IntVal
		if sp.TargetPort.StrVal != "" {
			port = 0
			for _, c := range pod.Spec.Containers {
				for _, cp := range c.Ports {
					cpProto := cp.Protocol
					if cpProto == "" {
						cpProto = corev1.ProtocolTCP
					}
					if cp.Name == sp.TargetPort.StrVal && cpProto == proto {
						port = cp.ContainerPort
					}
				}
			}
			if port == 0 {
				continue
			}
		} else if port == 0 {
			port = sp.Port
		}
		name := sp.Name
		out = append(out, discoveryv1.EndpointPort{Name: &name, Port: &port, Protocol: &proto})
	}
	return out
}

func portsSignature(ps []discoveryv1.EndpointPort) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%s:%d/%s", *p.Name, *p.Port, *p.Protocol))
	}
	return strings.Join(parts, ",")
}
