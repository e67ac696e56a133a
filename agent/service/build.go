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
}

// claims records who holds each frontend key and node port, so a second
// claimant is refused whole.
type claims struct {
	keys      map[FrontendKey]string
	nodePorts map[string]string
	backends  map[FrontendKey]bool
	frontends int
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
	cl := &claims{keys: map[FrontendKey]string{}, nodePorts: map[string]string{}, backends: map[FrontendKey]bool{}}

	slices := indexSlices(in.EndpointSlices)
	var services []*corev1.Service
	for _, svc := range in.Services {
		if svc != nil {
			services = append(services, svc)
		}
	}
	sort.SliceStable(services, func(i, j int) bool { return older(&services[i].ObjectMeta, &services[j].ObjectMeta) })
	for _, svc := range services {
		name := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
		var eps [2]endpointsByPort
		eps[0] = collectEndpoints(slices[name], false, cfg.NodeName)
		eps[1] = collectEndpoints(slices[name], true, cfg.NodeName)
		ss, err := buildService(svc, eps, &cfg)
		if err == nil && ss != nil {
			ss.frontends, err = cl.take("Service "+name.String(), ss.frontends, ss.nodePorts, &cfg)
		}
		if err != nil {
			st.Status = append(st.Status, Status{Object: "Service " + name.String(), Error: err.Error()})
			continue
		}
		if ss == nil {
			continue
		}
		st.Frontends = append(st.Frontends, ss.frontends...)
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
	return st
}

// take registers one object's frontends and node ports, or none of them,
// and returns the frontends without repeats. Within one object the same key
// twice is one frontend when the kinds agree (an IP listed twice) and an
// error when they do not.
func (cl *claims) take(owner string, fs []Frontend, nodePorts []string, cfg *Config) ([]Frontend, error) {
	// A node port is held on every node address at once, so it collides by
	// protocol and number alone, whatever the address. It is checked before
	// the frontends so that its collision is named as one.
	seenNP := map[string]bool{}
	for _, np := range nodePorts {
		if seenNP[np] {
			continue
		}
		seenNP[np] = true
		if other, ok := cl.nodePorts[np]; ok {
			return nil, fmt.Errorf("node port %s is already taken by %s", np, other)
		}
	}
	mine := map[FrontendKey]Kind{}
	newBackends := map[FrontendKey]bool{}
	var out []Frontend
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
		for _, list := range [][]Backend{f.Backends, f.LocalOriginBackends} {
			for _, b := range list {
				bk := FrontendKey{b.Addr, b.Port, f.Protocol}
				if !cl.backends[bk] {
					newBackends[bk] = true
				}
			}
		}
	}
	if n := cl.frontends + len(mine); n > cfg.FrontendCapacity {
		return nil, fmt.Errorf("service map full: %d frontends would exceed the capacity of %d", n, cfg.FrontendCapacity)
	}
	if n := len(cl.backends) + len(newBackends); n > cfg.BackendCapacity {
		return nil, fmt.Errorf("backend map full: %d backends would exceed the capacity of %d", n, cfg.BackendCapacity)
	}
	for k := range mine {
		cl.keys[k] = owner
	}
	for np := range seenNP {
		cl.nodePorts[np] = owner
	}
	for bk := range newBackends {
		cl.backends[bk] = true
	}
	cl.frontends += len(mine)
	return out, nil
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
