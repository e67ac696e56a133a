package engine

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kestrelnet/kestrel/scenarios/format"
)

// ipAnnotation asks for a pod's address (sim's IPAM obeys it; the engine
// assigns it in every mode). One address, or an IPv4 and an IPv6 one joined
// by a comma.
const ipAnnotation = "kestrel.dev/ip"

// podObjects are the Pod objects of a scenario, declared or inline in a step,
// in declaration order.
func podObjects(s *format.Scenario) []format.Object {
	var out []format.Object
	for _, o := range s.Spec.Objects {
		if o.Kind == "Pod" {
			out = append(out, o)
		}
	}
	for _, st := range s.Spec.Steps {
		for _, ref := range st.Apply {
			if ref.Inline != nil && ref.Inline.Kind == "Pod" {
				out = append(out, *ref.Inline)
			}
		}
	}
	return out
}

// decodePod reads a Pod object as written; its namespace defaults to default.
func decodePod(o format.Object) (*corev1.Pod, error) {
	pod := &corev1.Pod{}
	if err := json.Unmarshal(o.JSON, pod); err != nil {
		return nil, fmt.Errorf("%s: Pod %s: %v", o.Source, o.Name, err)
	}
	if pod.Namespace == "" {
		pod.Namespace = "default"
	}
	return pod, nil
}

// givenIPs are the addresses a Pod object asks for in its annotation.
func givenIPs(o format.Object, pod *corev1.Pod) ([]netip.Addr, error) {
	v := pod.Annotations[ipAnnotation]
	if v == "" {
		return nil, nil
	}
	var out []netip.Addr
	families := map[bool]bool{}
	for _, s := range strings.Split(v, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || families[a.Is4()] {
			return nil, fmt.Errorf("%s: Pod %s: annotation %s must be one IPv4 and/or one IPv6 address, got %q", o.Source, o.Name, ipAnnotation, v)
		}
		families[a.Is4()] = true
		out = append(out, a)
	}
	return out, nil
}

// placement is where the engine put a pod: its node and addresses. A Pod
// object keeps the placement of its first declaration when a step replaces it.
type placement struct {
	node string
	ips  []netip.Addr
}

// podFromObject is the pod a Pod object declares, as the cluster runs it:
// its node and addresses from p, running, ports with their protocol spelled
// out (as the API server defaults it).
func podFromObject(o format.Object, p placement) (*corev1.Pod, error) {
	pod, err := decodePod(o)
	if err != nil {
		return nil, err
	}
	pod.TypeMeta.APIVersion, pod.TypeMeta.Kind = "v1", "Pod"
	pod.Labels = maps.Clone(pod.Labels)
	pod.Spec.NodeName = p.node
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		for j := range c.Ports {
			if c.Ports[j].Protocol == "" {
				c.Ports[j].Protocol = corev1.ProtocolTCP
			}
		}
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning}
	for _, ip := range p.ips {
		pod.Status.PodIPs = append(pod.Status.PodIPs, corev1.PodIP{IP: ip.String()})
	}
	if len(p.ips) > 0 {
		pod.Status.PodIP = pod.Status.PodIPs[0].IP
	}
	return pod, nil
}

// objectKey names an object as the cluster does; a Pod's namespace defaults
// to default.
func objectKey(o format.Object) string {
	ns := o.Namespace
	if o.Kind == "Pod" && ns == "" {
		ns = "default"
	}
	return ns + "/" + o.Name
}
