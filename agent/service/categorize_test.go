package service

import (
	"net/netip"
	"sort"
	"strings"
	"testing"
)

// Mirrors TestCategorizeEndpoints (kubernetes pkg/proxy/topology_test.go),
// case for case where the case still holds: the hints annotation cases are
// left out, since kube-proxy now follows the hints alone (the EndpointSlice
// controller writes them only when the service asks), as categorize does.
func TestCategorizeEndpointsAsKubeProxy(t *testing.T) {
	type e struct {
		addr                        string
		zones                       string // comma-separated zone hints
		ready, serving, terminating bool
		local                       bool
	}
	ready := func(addr, zones string, local bool) e { return e{addr, zones, true, true, false, local} }
	cases := []struct {
		name                         string
		zone                         string
		nodePort, etpLocal, itpLocal bool
		eps                          []e
		cluster, local               string
	}{
		{name: "hints enabled, zone hints narrow to this zone", zone: "zone-a",
			eps:     []e{ready("10.1.2.3", "zone-a", false), ready("10.1.2.4", "zone-b", false), ready("10.1.2.5", "zone-c", false), ready("10.1.2.6", "zone-a", false)},
			cluster: "10.1.2.3, 10.1.2.6"},
		{name: "eTP: Local, topology ignored for Local endpoints", zone: "zone-a", nodePort: true, etpLocal: true,
			eps:     []e{ready("10.1.2.3", "zone-a", true), ready("10.1.2.4", "zone-b", true), ready("10.1.2.5", "zone-c", false), ready("10.1.2.6", "zone-a", false)},
			cluster: "10.1.2.3, 10.1.2.6", local: "10.1.2.3, 10.1.2.4"},
		{name: "iTP: Local, topology ignored for Local endpoints", zone: "zone-a", nodePort: true, itpLocal: true,
			eps:     []e{ready("10.1.2.3", "zone-a", true), ready("10.1.2.4", "zone-b", true), ready("10.1.2.5", "zone-c", false), ready("10.1.2.6", "zone-a", false)},
			cluster: "10.1.2.3, 10.1.2.6", local: "10.1.2.3, 10.1.2.4"},
		{name: "empty node labels", zone: "",
			eps: []e{ready("10.1.2.3", "zone-a", false)}, cluster: "10.1.2.3"},
		{name: "node in different zone, no endpoint filtering", zone: "zone-b",
			eps:     []e{ready("10.1.2.3", "zone-a", false), ready("10.1.2.5", "zone-c", false)},
			cluster: "10.1.2.3, 10.1.2.5"},
		{name: "unready endpoint", zone: "zone-a",
			eps:     []e{ready("10.1.2.3", "zone-a", false), ready("10.1.2.4", "zone-b", false), ready("10.1.2.5", "zone-c", false), {"10.1.2.6", "zone-a", false, false, false, false}},
			cluster: "10.1.2.3"},
		{name: "only unready endpoints in same zone (should not filter)", zone: "zone-a",
			eps: []e{{"10.1.2.3", "zone-a", false, false, false, false}, ready("10.1.2.4", "zone-b", false), ready("10.1.2.5", "zone-c", false),
				{"10.1.2.6", "zone-a", false, false, false, false}},
			cluster: "10.1.2.4, 10.1.2.5"},
		{name: "missing hints, no filtering applied", zone: "zone-a",
			eps:     []e{ready("10.1.2.3", "zone-a", false), ready("10.1.2.4", "zone-b", false), ready("10.1.2.5", "", false), ready("10.1.2.6", "zone-a", false)},
			cluster: "10.1.2.3, 10.1.2.4, 10.1.2.5, 10.1.2.6"},
		{name: "multiple hints per endpoint, filtering includes any endpoint with zone included", zone: "zone-c",
			eps:     []e{ready("10.1.2.3", "zone-a,zone-b,zone-c", false), ready("10.1.2.4", "zone-b,zone-c", false), ready("10.1.2.5", "zone-b,zone-d", false), ready("10.1.2.6", "zone-c", false)},
			cluster: "10.1.2.3, 10.1.2.4, 10.1.2.6"},
		{name: "conflicting topology and localness require merging allEndpoints", zone: "zone-a", nodePort: true, itpLocal: true,
			eps:     []e{ready("10.0.0.0", "zone-a", true), ready("10.0.0.1", "zone-b", true), ready("10.0.0.2", "zone-a", false), ready("10.0.0.3", "zone-b", false)},
			cluster: "10.0.0.0, 10.0.0.2", local: "10.0.0.0, 10.0.0.1"},
		{name: "iTP: Local, with empty endpoints", itpLocal: true},
		{name: "iTP: Local, but all endpoints are remote", itpLocal: true,
			eps: []e{ready("10.0.0.0", "", false), ready("10.0.0.1", "", false)}},
		{name: "iTP: Local, all endpoints are local", itpLocal: true,
			eps: []e{ready("10.0.0.0", "", true), ready("10.0.0.1", "", true)}, local: "10.0.0.0, 10.0.0.1"},
		{name: "iTP: Local, some endpoints are local", itpLocal: true,
			eps: []e{ready("10.0.0.0", "", true), ready("10.0.0.1", "", false)}, local: "10.0.0.0"},
		{name: "Cluster traffic policy, endpoints not Ready",
			eps: []e{{"10.0.0.0", "", false, false, false, false}, {"10.0.0.1", "", false, false, false, false}}},
		{name: "Cluster traffic policy, some endpoints are Ready",
			eps: []e{{"10.0.0.0", "", false, false, false, false}, ready("10.0.0.1", "", false)}, cluster: "10.0.0.1"},
		{name: "Cluster traffic policy, all endpoints are terminating",
			eps:     []e{{"10.0.0.0", "", false, true, true, true}, {"10.0.0.1", "", false, true, true, false}},
			cluster: "10.0.0.0, 10.0.0.1"},
		{name: "iTP: Local, eTP: Cluster, some endpoints local", nodePort: true, itpLocal: true,
			eps: []e{ready("10.0.0.0", "", true), ready("10.0.0.1", "", false)}, cluster: "10.0.0.0, 10.0.0.1", local: "10.0.0.0"},
		{name: "iTP: Cluster, eTP: Local, some endpoints local", nodePort: true, etpLocal: true,
			eps: []e{ready("10.0.0.0", "", true), ready("10.0.0.1", "", false)}, cluster: "10.0.0.0, 10.0.0.1", local: "10.0.0.0"},
		{name: "iTP: Local, eTP: Local, some endpoints local", nodePort: true, etpLocal: true, itpLocal: true,
			eps: []e{ready("10.0.0.0", "", true), ready("10.0.0.1", "", false)}, cluster: "10.0.0.0, 10.0.0.1", local: "10.0.0.0"},
		{name: "iTP: Local, eTP: Local, all endpoints remote", nodePort: true, etpLocal: true, itpLocal: true,
			eps: []e{ready("10.0.0.0", "", false), ready("10.0.0.1", "", false)}, cluster: "10.0.0.0, 10.0.0.1"},
		{name: "iTP: Local, eTP: Local, all endpoints remote and terminating", nodePort: true, etpLocal: true, itpLocal: true,
			eps: []e{{"10.0.0.0", "", false, true, true, false}, {"10.0.0.1", "", false, true, true, false}}, cluster: "10.0.0.0, 10.0.0.1"},
		{name: "iTP: Cluster, eTP: Local, with terminating endpoints", nodePort: true, etpLocal: true,
			eps: []e{ready("10.0.0.0", "", false), {"10.0.0.1", "", false, false, false, true},
				{"10.0.0.2", "", false, true, true, true}, {"10.0.0.3", "", false, true, true, false}},
			cluster: "10.0.0.0", local: "10.0.0.2"},
		{name: "no cluster endpoints for iTP:Local internal-only service", itpLocal: true,
			eps: []e{ready("10.0.0.0", "", false), ready("10.0.0.1", "", true)}, local: "10.0.0.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var eps []endpoint
			for _, x := range c.eps {
				ep := endpoint{addr: netip.MustParseAddr(x.addr), port: 80, ready: x.ready, serving: x.serving, terminating: x.terminating, local: x.local}
				if x.zones != "" {
					ep.zoneHints = map[string]bool{}
					for _, z := range strings.Split(x.zones, ",") {
						ep.zoneHints[z] = true
					}
				}
				eps = append(eps, ep)
			}
			// kube-proxy's UsesClusterEndpoints / UsesLocalEndpoints, with
			// a NodePort standing for "externally accessible".
			usesCluster := !c.itpLocal || c.nodePort
			usesLocal := c.itpLocal || (c.etpLocal && c.nodePort)
			got := categorize(eps, usesCluster, usesLocal, c.zone)
			if s := addrs(got.cluster); s != c.cluster {
				t.Errorf("cluster endpoints %q, want %q", s, c.cluster)
			}
			if s := addrs(got.local); s != c.local {
				t.Errorf("local endpoints %q, want %q", s, c.local)
			}
			if !usesCluster && got.cluster != nil || !usesLocal && got.local != nil {
				t.Errorf("a list the port never uses was filled: cluster %v local %v", got.cluster, got.local)
			}
		})
	}
}

func addrs(bs []Backend) string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Addr.String())
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
