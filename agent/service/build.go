package service

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Config is what Build needs to know about the node and the cluster.
type Config struct {
	// NodeName decides which endpoints are local (EndpointSlice nodeName).
	NodeName string
	// NodeZone is the node's topology.kubernetes.io/zone label, for
	// topology hints; empty turns them off.
	NodeZone string
	// NodeIPs are the addresses NodePorts and hostPorts are reachable on,
	// and the ones loadBalancerSourceRanges are checked against.
	NodeIPs []netip.Addr
	// ServiceCIDRs are the cluster's service ranges (kube-apiserver's
	// --service-cluster-ip-range): unallocated addresses in them are dropped.
	ServiceCIDRs []netip.Prefix
	// FrontendCapacity and BackendCapacity bound the State; zero means
	// DefaultFrontendCapacity and DefaultBackendCapacity.
	FrontendCapacity int
	BackendCapacity  int
}

// Input is everything Build reads.
type Input struct {
	Config
	Services       []*corev1.Service
	EndpointSlices []*discoveryv1.EndpointSlice
	// Pods give hostPorts: every container port with a hostPort of a pod
	// bound to this node.
	Pods []*corev1.Pod
	// Cache, if not nil, keeps the services' parts between Builds; the
	// State is the same with or without it.
	Cache *Cache
}

// claims records who holds each frontend key and node port, so a second
// claimant is refused whole.
type claims struct {
	keys      map[FrontendKey]string
	nodePorts map[string]string
	// backends counts the frontends taken that hold each backend, so that
	// releasing an object (a Build from the difference) knows which go.
	backends  map[backendKey]int32
	frontends int
	// Scratch maps of take, emptied and reused from one call to the next:
	// with thousands of services their allocation was most of its cost.
	seenNP map[string]bool
	mine   map[FrontendKey]Kind
	added  []backendKey // backend references the object being taken added
}

// backendKey is a backend in the claims: a FrontendKey with the protocol as
// a number, which hashes faster than its name (100k backends a Build).
type backendKey struct {
	addr  netip.Addr
	port  uint16
	proto uint8
}

func protoNumber(p corev1.Protocol) uint8 {
	switch p {
	case corev1.ProtocolTCP:
		return 6
	case corev1.ProtocolUDP:
		return 17
	case corev1.ProtocolSCTP:
		return 132
	}
	return 0
}

// scratch empties the maps take works in, dropping ones a big object grew
// (clearing a map costs its capacity, not its length).
func (cl *claims) scratch() {
	const big = 256
	if cl.mine == nil || len(cl.mine) > big || len(cl.seenNP) > big {
		cl.seenNP, cl.mine = map[string]bool{}, map[FrontendKey]Kind{}
		return
	}
	clear(cl.seenNP)
	clear(cl.mine)
}

// Build computes the node's load-balancing state. Services are taken oldest
// first (creationTimestamp, then namespace/name), so when two services claim
// the same frontend or node port the one that held it keeps it and the newer
// one is left out, with the reason in Status; pods with hostPorts come after
// every service, in the same order.
func Build(in Input) State {
	cfg := in.Config
	if cfg.FrontendCapacity == 0 {
		cfg.FrontendCapacity = DefaultFrontendCapacity
	}
	if cfg.BackendCapacity == 0 {
		cfg.BackendCapacity = DefaultBackendCapacity
	}
	st := State{ServiceCIDRs: append([]netip.Prefix(nil), cfg.ServiceCIDRs...)}
	// Sized as the last Build's, so that they are not grown step by step.
	var hint [2]int
	if in.Cache != nil {
		hint = in.Cache.sizes
	}
	if st, ok := buildDelta(in, cfg); ok {
		return st
	}
	cl := &claims{keys: make(map[FrontendKey]string, hint[0]), nodePorts: map[string]string{}, backends: make(map[backendKey]int32, hint[1])}
	refused, podFrontends := false, 0

	slices := indexSlices(in.EndpointSlices)
	var services []*corev1.Service
	for _, svc := range in.Services {
		if svc != nil {
			services = append(services, svc)
		}
	}
	sort.SliceStable(services, func(i, j int) bool { return older(&services[i].ObjectMeta, &services[j].ObjectMeta) })
	var cached map[*corev1.Service]cacheEntry
	if in.Cache != nil {
		cached = in.Cache.start(cfg)
	}
	for _, svc := range services {
		name := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
		e, ok := built(cached, svc, slices[name])
		e.taken = nil
		if !ok {
			var eps [2]endpointsByPort
			eps[0] = collectEndpoints(slices[name], false, cfg.NodeName)
			eps[1] = collectEndpoints(slices[name], true, cfg.NodeName)
			e.slices = slices[name]
			e.ss, e.err = buildService(svc, eps, &cfg)
		}
		ss, err := e.ss, e.err
		var frontends []Frontend
		if err == nil && ss != nil {
			// ss may be cached: what the claims leave goes elsewhere.
			frontends, err = cl.take("Service "+name.String(), ss.frontends, ss.nodePorts, &cfg)
			refused = refused || err != nil
			e.taken = frontends
		}
		if in.Cache != nil {
			in.Cache.entries[svc] = e
			in.Cache.byName[name] = svc
		}
		if err != nil {
			st.Status = append(st.Status, Status{Object: "Service " + name.String(), Error: err.Error()})
			continue
		}
		if ss == nil {
			continue
		}
		st.Frontends = append(st.Frontends, frontends...)
		st.ClusterIPs = append(st.ClusterIPs, ss.clusterIPs...)
		if ss.health != nil {
			st.HealthChecks = append(st.HealthChecks, *ss.health)
		}
	}

	var pods []*corev1.Pod
	for _, pod := range in.Pods {
		if pod != nil {
			pods = append(pods, pod)
		}
	}
	sort.SliceStable(pods, func(i, j int) bool { return older(&pods[i].ObjectMeta, &pods[j].ObjectMeta) })
	for _, pod := range pods {
		obj := "Pod " + types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}.String()
		fs, err := hostPorts(pod, &cfg)
		if err == nil && len(fs) > 0 {
			fs, err = cl.take(obj, fs, nil, &cfg)
			refused = refused || err != nil
			podFrontends += len(fs)
		}
		if err != nil {
			st.Status = append(st.Status, Status{Object: obj, Error: err.Error()})
			continue
		}
		st.Frontends = append(st.Frontends, fs...)
	}

	sort.Slice(st.Frontends, func(i, j int) bool { return frontendLess(&st.Frontends[i], &st.Frontends[j]) })
	sort.Slice(st.ClusterIPs, func(i, j int) bool { return st.ClusterIPs[i].Less(st.ClusterIPs[j]) })
	sort.Slice(st.HealthChecks, func(i, j int) bool { return st.HealthChecks[i].Port < st.HealthChecks[j].Port })
	sort.Slice(st.Status, func(i, j int) bool { return st.Status[i].Object < st.Status[j].Object })
	st.Backends = len(cl.backends)
	if in.Cache != nil {
		in.Cache.sizes = [2]int{len(cl.keys), len(cl.backends)}
		in.Cache.full(st, cl, refused, podFrontends > 0)
	}
	return st
}

// take registers one object's frontends and node ports, or none of them,
// and returns the frontends without repeats. Within one object the same key
// twice is one frontend when the kinds agree (an IP listed twice) and an
// error when they do not.
func (cl *claims) take(owner string, fs []Frontend, nodePorts []string, cfg *Config) (_ []Frontend, err error) {
	// A node port is held on every node address at once, so it collides by
	// protocol and number alone, whatever the address. It is checked before
	// the frontends so that its collision is named as one.
	cl.scratch()
	seenNP, mine := cl.seenNP, cl.mine
	for _, np := range nodePorts {
		if seenNP[np] {
			continue
		}
		seenNP[np] = true
		if other, ok := cl.nodePorts[np]; ok {
			return nil, fmt.Errorf("node port %s is already taken by %s", np, other)
		}
	}
	// The object's backends go straight into cl.backends (one map
	// operation each, where a separate set took three), and come out again
	// if the object is refused.
	added := cl.added[:0]
	defer func() {
		if err != nil {
			for _, bk := range added {
				cl.unref(bk)
			}
		}
		cl.added = added[:0]
	}()
	out := make([]Frontend, 0, len(fs))
	for _, f := range fs {
		k := f.Key()
		if kind, ok := mine[k]; ok {
			if kind != f.Kind {
				return nil, fmt.Errorf("frontend %s is claimed twice, as %s and %s", k, kind, f.Kind)
			}
			continue
		}
		mine[k] = f.Kind
		out = append(out, f)
		if other, ok := cl.keys[k]; ok {
			return nil, fmt.Errorf("frontend %s (%s) is already taken by %s", k, f.Kind, other)
		}
		proto := protoNumber(f.Protocol)
		for _, list := range [][]Backend{f.Backends, f.LocalOriginBackends} {
			for _, b := range list {
				bk := backendKey{b.Addr, b.Port, proto}
				cl.backends[bk]++
				added = append(added, bk)
			}
		}
	}
	if n := cl.frontends + len(mine); n > cfg.FrontendCapacity {
		return nil, fmt.Errorf("service map full: %d frontends would exceed the capacity of %d", n, cfg.FrontendCapacity)
	}
	if n := len(cl.backends); n > cfg.BackendCapacity {
		return nil, fmt.Errorf("backend map full: %d backends would exceed the capacity of %d", n, cfg.BackendCapacity)
	}
	for k := range mine {
		cl.keys[k] = owner
	}
	for np := range seenNP {
		cl.nodePorts[np] = owner
	}
	cl.frontends += len(mine)
	return out, nil
}

// unref drops one reference to a backend.
func (cl *claims) unref(bk backendKey) {
	if n := cl.backends[bk] - 1; n > 0 {
		cl.backends[bk] = n
	} else {
		delete(cl.backends, bk)
	}
}

// release undoes a successful take of fs (what it returned) and nodePorts.
func (cl *claims) release(fs []Frontend, nodePorts []string) {
	for _, f := range fs {
		delete(cl.keys, f.Key())
		proto := protoNumber(f.Protocol)
		for _, list := range [][]Backend{f.Backends, f.LocalOriginBackends} {
			for _, b := range list {
				cl.unref(backendKey{b.Addr, b.Port, proto})
			}
		}
	}
	for _, np := range nodePorts {
		delete(cl.nodePorts, np)
	}
	cl.frontends -= len(fs)
}

func older(a, b *metav1.ObjectMeta) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

func frontendLess(a, b *Frontend) bool {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c < 0
	}
	if a.Port != b.Port {
		return a.Port < b.Port
	}
	if a.Protocol != b.Protocol {
		return a.Protocol < b.Protocol
	}
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	return strings.Compare(a.Service.String(), b.Service.String()) < 0
}
