package engine

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kestrelnet/kestrel/scenarios/format"
)

// state is the scenario's desired cluster as steps change it.
type state struct {
	nodes    []string
	nodeIPs  map[string][]netip.Addr
	podCIDRs map[string][]netip.Prefix
	nsOrder  []string
	nsLabels map[string]map[string]string
	pods     []*corev1.Pod
	applied  []format.Object
	// shorthand are the pods of spec.pods (always there); placed are the
	// node and addresses of every Pod object, fixed before the first step.
	shorthand map[string]bool
	placed    map[string]placement
	world     []WorldServer // spec.world: the same for the whole scenario
	dns       *ClusterDNS   // spec.dns: the same for the whole scenario
}

const nsNameLabel = "kubernetes.io/metadata.name"

// newState lays out nodes, namespaces and pods with their addresses. Node i (from
// 0) owns 10.244.i.0/24 (and fd00:10:244:i::/64); its pods get .10, .11, ... in
// declaration order unless they give their own addresses.
func newState(s *format.Scenario) (*state, error) {
	st := &state{
		nodes:     s.Spec.Nodes,
		nodeIPs:   map[string][]netip.Addr{},
		podCIDRs:  map[string][]netip.Prefix{},
		nsLabels:  map[string]map[string]string{},
		shorthand: map[string]bool{},
		placed:    map[string]placement{},
		dns:       clusterDNSOf(s),
	}
	for _, w := range s.Spec.World {
		ws := WorldServer{IP: netip.MustParseAddr(w.IP)}
		for _, p := range w.Ports {
			ws.Ports = append(ws.Ports, WorldPort{Port: p.Port, Protocol: p.Protocol})
		}
		st.world = append(st.world, ws)
	}
	families := scenarioFamilies(s)
	for i, n := range st.nodes {
		for _, f := range families {
			if f == "IPv4" {
				st.nodeIPs[n] = append(st.nodeIPs[n], netip.AddrFrom4([4]byte{172, 18, 0, byte(i + 2)}))
				st.podCIDRs[n] = append(st.podCIDRs[n], netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i), 0}), 24))
			} else {
				st.nodeIPs[n] = append(st.nodeIPs[n], netip.MustParseAddr(fmt.Sprintf("fc00:f853:ccd:e793::%x", i+2)))
				st.podCIDRs[n] = append(st.podCIDRs[n], netip.MustParsePrefix(fmt.Sprintf("fd00:10:244:%x::/64", i)))
			}
		}
	}
	objs := podObjects(s)
	given := map[string][]netip.Addr{}
	used := map[netip.Addr]bool{}
	for _, p := range s.Spec.Pods {
		for _, ip := range p.IPs {
			used[netip.MustParseAddr(ip)] = true
		}
	}
	for _, o := range objs {
		pod, err := decodePod(o)
		if err != nil {
			return nil, err
		}
		ips, err := givenIPs(o, pod)
		if err != nil {
			return nil, err
		}
		given[objectKey(o)] = ips
		for _, a := range ips {
			used[a] = true
		}
	}
	next := map[netip.Prefix]netip.Addr{}
	roundRobin := 0
	// place picks a node (round-robin when not given) and fills in the
	// addresses of the families the pod was not given.
	place := func(node string, ips []netip.Addr, where string) (placement, error) {
		if node == "" {
			node = st.nodes[roundRobin%len(st.nodes)]
			roundRobin++
		}
		if !slices.Contains(st.nodes, node) {
			return placement{}, fmt.Errorf("%s: node %q is not in spec.nodes %v", where, node, st.nodes)
		}
		ips = slices.Clone(ips)
		for _, cidr := range st.podCIDRs[node] {
			if slices.ContainsFunc(ips, func(a netip.Addr) bool { return a.Is4() == cidr.Addr().Is4() }) {
				continue
			}
			a, ok := next[cidr]
			if !ok {
				a = offset(cidr.Addr(), 10)
			}
			for used[a] {
				a = a.Next()
			}
			if !cidr.Contains(a) {
				return placement{}, fmt.Errorf("%s: node %s's pod CIDR %s is full", where, node, cidr)
			}
			used[a] = true
			next[cidr] = a.Next()
			ips = append(ips, a)
		}
		slices.SortFunc(ips, func(a, b netip.Addr) int { return boolCmp(a.Is6(), b.Is6()) })
		return placement{node: node, ips: ips}, nil
	}
	for _, p := range s.Spec.Pods {
		var ips []netip.Addr
		for _, ip := range p.IPs {
			ips = append(ips, netip.MustParseAddr(ip))
		}
		pl, err := place(p.Node, ips, fmt.Sprintf("%s:%d", s.File, p.Line))
		if err != nil {
			return nil, err
		}
		ns, name, _ := strings.Cut(p.Name, "/")
		st.addNamespace(ns)
		st.pods = append(st.pods, newPod(ns, name, pl.node, p, pl.ips))
		st.shorthand[p.Name] = true
	}
	for _, o := range objs {
		key := objectKey(o)
		if st.shorthand[key] {
			return nil, fmt.Errorf("%s: Pod %s is also declared in spec.pods", o.Source, key)
		}
		if _, ok := st.placed[key]; ok {
			continue // a later version of the same pod keeps its place
		}
		pod, _ := decodePod(o)
		pl, err := place(pod.Spec.NodeName, given[key], o.Source)
		if err != nil {
			return nil, err
		}
		st.placed[key] = pl
	}
	for _, ns := range slices.Sorted(maps.Keys(s.Spec.NamespaceLabels)) {
		st.addNamespace(ns)
		st.setNamespaceLabels(ns, s.Spec.NamespaceLabels[ns])
	}
	return st, nil
}

func newPod(ns, name, node string, p format.Pod, ips []netip.Addr) *corev1.Pod {
	c := corev1.Container{Name: "main", Image: "kestrel.dev/echo"}
	if p.Server != "" {
		// The image names the server (workload.ServerOfImage), as a real
		// manifest's quay.io/cilium/json-mock does.
		c.Image = "kestrel.dev/" + p.Server
	}
	for _, port := range p.Ports {
		c.Ports = append(c.Ports, corev1.ContainerPort{
			Name:          port.Name,
			ContainerPort: int32(port.Port),
			Protocol:      corev1.Protocol(port.Protocol),
		})
	}
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: maps.Clone(p.Labels)},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{c}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, ip := range ips {
		pod.Status.PodIPs = append(pod.Status.PodIPs, corev1.PodIP{IP: ip.String()})
	}
	pod.Status.PodIP = pod.Status.PodIPs[0].IP
	return pod
}

func (st *state) addNamespace(ns string) {
	if _, ok := st.nsLabels[ns]; ok {
		return
	}
	st.nsOrder = append(st.nsOrder, ns)
	st.nsLabels[ns] = map[string]string{nsNameLabel: ns}
}

// setNamespaceLabels replaces a namespace's labels; the name label always stays.
func (st *state) setNamespaceLabels(ns string, labels map[string]string) {
	l := maps.Clone(labels)
	if l == nil {
		l = map[string]string{}
	}
	l[nsNameLabel] = ns
	st.nsLabels[ns] = l
}

func (st *state) pod(ref string) *corev1.Pod {
	for _, p := range st.pods {
		if p.Namespace+"/"+p.Name == ref {
			return p
		}
	}
	return nil
}

// apply adds o, or replaces the applied object of the same kind, namespace and
// name. A Pod object adds (or replaces) its pod, at the place it was given; a
// Namespace object sets its namespace's labels.
func (st *state) apply(o format.Object) error {
	switch o.Kind {
	case "Pod":
		pod, err := podFromObject(o, st.placed[objectKey(o)])
		if err != nil {
			return err
		}
		st.addNamespace(pod.Namespace)
		st.pods = slices.DeleteFunc(st.pods, func(p *corev1.Pod) bool { return p.Namespace == pod.Namespace && p.Name == pod.Name })
		st.pods = append(st.pods, pod)
	case "Namespace":
		st.addNamespace(o.Name)
		st.setNamespaceLabels(o.Name, o.Labels)
	}
	for i, a := range st.applied {
		if sameObject(a, o) {
			st.applied[i] = o
			return nil
		}
	}
	if o.Namespace != "" {
		st.addNamespace(o.Namespace)
	}
	st.applied = append(st.applied, o)
	return nil
}

// remove takes o out of the cluster (a Pod object: its pod). Namespaces stay
// for the whole scenario, as their pods do; change their labels with
// setLabels or by applying the Namespace again.
func (st *state) remove(o format.Object) error {
	switch o.Kind {
	case "Namespace":
		return fmt.Errorf("namespace %s cannot be deleted: namespaces last the whole scenario (change its labels instead)", o.Name)
	case "Pod":
		key := objectKey(o)
		st.pods = slices.DeleteFunc(st.pods, func(p *corev1.Pod) bool { return p.Namespace+"/"+p.Name == key })
	}
	for i, a := range st.applied {
		if sameObject(a, o) {
			st.applied = slices.Delete(st.applied, i, i+1)
			return nil
		}
	}
	return nil
}

func sameObject(a, b format.Object) bool {
	return a.Kind == b.Kind && objectKey(a) == objectKey(b)
}

// cluster is a deep copy of the current state, safe to hand to a runner.
func (st *state) cluster() *Cluster {
	c := &Cluster{
		Nodes:    slices.Clone(st.nodes),
		NodeIPs:  maps.Clone(st.nodeIPs),
		PodCIDRs: maps.Clone(st.podCIDRs),
	}
	for _, w := range st.world {
		c.World = append(c.World, WorldServer{IP: w.IP, Ports: slices.Clone(w.Ports)})
	}
	c.DNS = st.dns.clone()
	for _, ns := range st.nsOrder {
		c.Namespaces = append(c.Namespaces, &corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: maps.Clone(st.nsLabels[ns])},
		})
	}
	for _, p := range st.pods {
		c.Pods = append(c.Pods, p.DeepCopy())
	}
	for _, o := range st.applied {
		if o.Kind == "Pod" || o.Kind == "Namespace" {
			continue // in Pods and Namespaces
		}
		c.Manifests = append(c.Manifests, Manifest{
			APIVersion: o.APIVersion, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name,
			Source: o.Source, JSON: slices.Clone(o.JSON),
		})
	}
	return c
}

// scenarioFamilies is spec.ipFamilies, else the families of the pods' own
// addresses, else IPv4.
func scenarioFamilies(s *format.Scenario) []string {
	if len(s.Spec.IPFamilies) > 0 {
		return s.Spec.IPFamilies
	}
	var v4, v6 bool
	for _, p := range s.Spec.Pods {
		for _, ip := range p.IPs {
			a := netip.MustParseAddr(ip)
			v4, v6 = v4 || a.Is4(), v6 || a.Is6()
		}
	}
	switch {
	case v4 && v6:
		return []string{"IPv4", "IPv6"}
	case v6:
		return []string{"IPv6"}
	}
	return []string{"IPv4"}
}

func offset(a netip.Addr, n int) netip.Addr {
	for range n {
		a = a.Next()
	}
	return a
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
