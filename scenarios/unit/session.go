package unit

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/kestrelnet/kestrel/agent/identity"
	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/scenarios/engine"
)

// session is one scenario's datapaths (one per node) and the bookkeeping that
// must survive from step to step: endpoint ids, policy cookies, source ports.
type session struct {
	runner    *Runner
	scenario  string
	nodes     map[string]*node
	epIDs     map[string]uint32 // "ns/pod" -> endpoint id, stable across steps
	cookies   *cookieTable
	pods      map[string]podState // as of the last Sync
	nextSport uint16
}

type node struct {
	name      string
	dp        *datapath.Datapath
	endpoints map[string]datapath.Endpoint // "ns/pod" -> installed endpoint
}

type podState struct {
	node     string
	identity identity.NumericIdentity
}

func newSession(scenario string, r *Runner) *session {
	return &session{
		runner:    r,
		scenario:  scenario,
		nodes:     map[string]*node{},
		epIDs:     map[string]uint32{},
		cookies:   newCookieTable(),
		pods:      map[string]podState{},
		nextSport: ephemeralLow,
	}
}

func (s *session) Close() error {
	for _, n := range s.nodes {
		s.runner.release(n.dp)
	}
	s.nodes = nil
	return nil
}

// nodeState is everything one node's datapath must hold, computed before any
// of it is written.
type nodeState struct {
	ipcache   []datapath.IPCacheEntry
	endpoints map[string]datapath.Endpoint
	policies  map[uint32][]datapath.PolicyEntry
}

func (s *session) Sync(_ context.Context, c *engine.Cluster) error {
	objs, err := parseManifests(c.Manifests)
	if err != nil {
		return err
	}
	res, err := policy.Resolve(policy.Input{
		ClusterName: "default",
		Namespaces:  c.Namespaces,
		Pods:        c.Pods,
		Policies:    objs,
	})
	if err != nil {
		return err
	}
	nodes := c.Nodes
	if len(nodes) == 0 {
		nodes = []string{""}
	}
	states := map[string]*nodeState{}
	pods := map[string]podState{}
	for _, name := range nodes {
		states[name] = &nodeState{endpoints: map[string]datapath.Endpoint{}, policies: map[uint32][]datapath.PolicyEntry{}}
		states[name].ipcache = ipcacheFor(name, c, res)
	}
	for _, pod := range c.Pods {
		key := pod.Namespace + "/" + pod.Name
		ep := res.Endpoints[key]
		if ep == nil {
			return fmt.Errorf("pod %s: the policy resolver returned no endpoint", key)
		}
		st := states[pod.Spec.NodeName]
		if st == nil {
			st = states[nodes[0]]
		}
		id := s.endpointID(key)
		var ips []netip.Addr
		for _, pip := range pod.Status.PodIPs {
			a, err := netip.ParseAddr(pip.IP)
			if err != nil {
				return fmt.Errorf("pod %s: bad IP %q: %w", key, pip.IP, err)
			}
			ips = append(ips, a)
		}
		st.endpoints[key] = datapath.Endpoint{
			ID: id, Identity: uint32(ep.Identity), IPs: ips,
			IngressEnforced: ep.Policy.IngressEnforced, EgressEnforced: ep.Policy.EgressEnforced,
		}
		entries := s.policyEntries(ep.Policy)
		if err := datapath.CheckPolicy(entries); err != nil {
			return fmt.Errorf("pod %s: %w", key, err)
		}
		st.policies[id] = entries
		pods[key] = podState{node: pod.Spec.NodeName, identity: ep.Identity}
	}
	for _, name := range nodes {
		if err := s.apply(name, states[name]); err != nil {
			return fmt.Errorf("node %s: %w", name, err)
		}
	}
	s.pods = pods
	return nil
}

// apply writes a node's state; endpoints that left the node are removed last.
func (s *session) apply(name string, st *nodeState) error {
	n, err := s.node(name)
	if err != nil {
		return err
	}
	if err := n.dp.SyncIPCache(st.ipcache); err != nil {
		return err
	}
	keys := make([]string, 0, len(st.endpoints))
	for k := range st.endpoints {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if err := n.dp.SetPolicies(st.policies); err != nil {
		return err
	}
	for _, k := range keys {
		ep := st.endpoints[k]
		if old, ok := n.endpoints[k]; ok && !sameIPs(old.IPs, ep.IPs) {
			if err := n.dp.DeleteEndpoint(old); err != nil {
				return err
			}
		}
		if err := n.dp.UpsertEndpoint(ep); err != nil {
			return err
		}
	}
	for k, old := range n.endpoints {
		if _, ok := st.endpoints[k]; !ok {
			if err := n.dp.DeleteEndpoint(old); err != nil {
				return err
			}
		}
	}
	n.endpoints = st.endpoints
	return nil
}

func (s *session) node(name string) (*node, error) {
	if n, ok := s.nodes[name]; ok {
		return n, nil
	}
	dp, err := s.runner.acquire()
	if err != nil {
		return nil, err
	}
	n := &node{name: name, dp: dp, endpoints: map[string]datapath.Endpoint{}}
	s.nodes[name] = n
	return n, nil
}

func (s *session) endpointID(pod string) uint32 {
	if id, ok := s.epIDs[pod]; ok {
		return id
	}
	id := uint32(len(s.epIDs) + 1)
	s.epIDs[pod] = id
	return id
}

// ipcacheFor is the resolver's ipcache plus the nodes' addresses: this node is
// the host, every other node a remote node.
func ipcacheFor(nodeName string, c *engine.Cluster, res *policy.Result) []datapath.IPCacheEntry {
	var out []datapath.IPCacheEntry
	for _, e := range res.IPCache {
		out = append(out, datapath.IPCacheEntry{Prefix: e.Prefix, Identity: uint32(e.Identity)})
	}
	for name, ips := range c.NodeIPs {
		id := identity.RemoteNode
		if name == nodeName {
			id = identity.Host
		}
		for _, ip := range ips {
			out = append(out, datapath.IPCacheEntry{Prefix: netip.PrefixFrom(ip, ip.BitLen()), Identity: uint32(id)})
		}
	}
	return out
}

func sameIPs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func parseManifests(ms []engine.Manifest) ([]policy.Object, error) {
	var out []policy.Object
	var errs []string
	for _, m := range ms {
		obj, err := policy.ParseJSONObject(m.JSON, m.Source)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if obj.IsPolicy() {
			out = append(out, obj)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return out, nil
}
