package unit

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/kestrelnet/kestrel/agent/datapathstate"
	"github.com/kestrelnet/kestrel/agent/fqdn"
	"github.com/kestrelnet/kestrel/agent/identity"
	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/agent/service"
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
	cookies   *datapathstate.Cookies
	pods      map[string]podState       // as of the last Sync
	podByIP   map[netip.Addr]string     // pod addresses -> "ns/pod", as of the last Sync
	nodeIPs   map[string][]netip.Addr   // as of the last Sync
	podCIDRs  map[string][]netip.Prefix // as of the last Sync
	nextSport uint16
	// As of the last Sync, for the L7 proxies' decisions (l7.go).
	resolved *policy.Result
	states   map[string]*datapathstate.State
	locals   map[string][]datapathstate.Local
	// cluster is the state last synced; fqdns what the DNS proxy learned
	// (dns.go): toFQDNs selects it at every Sync.
	cluster *engine.Cluster
	fqdns   fqdn.Cache
}

type node struct {
	name      string
	dp        *datapath.Datapath
	pool      pooled                       // how the runner takes it back
	endpoints map[string]datapath.Endpoint // "ns/pod" -> installed endpoint
	svcIDs    datapathstate.ServiceIDs     // datapath service ids, as the node's agent keeps them
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
		cookies:   datapathstate.NewCookies(),
		pods:      map[string]podState{},
		podByIP:   map[netip.Addr]string{},
		nextSport: ephemeralLow,
	}
}

func (s *session) Close() error {
	for _, n := range s.nodes {
		s.runner.release(n.pool)
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
	// Services with the slices the EndpointSlice controller would make; each
	// node's agent computes its own load-balancing state from them.
	svcs, epSlices, err := engine.ServiceObjects(c)
	if err != nil {
		return err
	}
	secrets, err := engine.SecretsOf(c.Manifests)
	if err != nil {
		return err
	}
	res, err := policy.Resolve(policy.Input{
		ClusterName: "default",
		Namespaces:  c.Namespaces,
		Pods:        c.Pods,
		Policies:    objs,
		Secrets:     secrets,
		FQDNs:       s.fqdns.Names(),
	})
	if err != nil {
		return err
	}
	nodes := c.Nodes
	if len(nodes) == 0 {
		nodes = []string{""}
	}
	locals := map[string][]datapathstate.Local{}
	pods := map[string]podState{}
	byIP := map[netip.Addr]string{}
	for _, pod := range c.Pods {
		key := pod.Namespace + "/" + pod.Name
		ep := res.Endpoints[key]
		if ep == nil {
			return fmt.Errorf("pod %s: the policy resolver returned no endpoint", key)
		}
		name := pod.Spec.NodeName
		if !slices.Contains(nodes, name) {
			name = nodes[0]
		}
		var ips []netip.Addr
		for _, pip := range pod.Status.PodIPs {
			a, err := netip.ParseAddr(pip.IP)
			if err != nil {
				return fmt.Errorf("pod %s: bad IP %q: %w", key, pip.IP, err)
			}
			ips = append(ips, a)
			byIP[a] = key
		}
		locals[name] = append(locals[name], datapathstate.Local{Key: key, Pod: key, ID: s.endpointID(key), IPs: ips})
		pods[key] = podState{node: pod.Spec.NodeName, identity: ep.Identity}
	}
	// Every node's state is computed (and validated) before any is written.
	states := map[string]*datapathstate.State{}
	lb := map[string]service.State{}
	for _, name := range nodes {
		st, err := datapathstate.Compute(res, name, c.NodeIPs, locals[name], s.cookies)
		if err != nil {
			return err
		}
		states[name] = st
		lb[name] = service.Build(service.Input{
			Config:         service.Config{NodeName: name, NodeIPs: c.NodeIPs[name]},
			Services:       svcs,
			EndpointSlices: epSlices,
			Pods:           c.Pods,
		})
	}
	for _, name := range nodes {
		if _, err := s.node(name, nodeDevice(c, name)); err != nil {
			return fmt.Errorf("node %s: %w", name, err)
		}
		if err := s.apply(name, states[name], lb[name]); err != nil {
			return fmt.Errorf("node %s: %w", name, err)
		}
	}
	s.pods = pods
	s.podByIP = byIP
	s.nodeIPs, s.podCIDRs = c.NodeIPs, c.PodCIDRs
	s.resolved, s.states, s.locals = res, states, locals
	s.cluster = c
	return nil
}

// apply writes a node's endpoints and policies, then its services, as the
// agent does: the ClusterIP frontends through the agent's own mapping.
func (s *session) apply(name string, st *datapathstate.State, lb service.State) error {
	n := s.nodes[name]
	var err error
	if n.endpoints, err = datapathstate.Apply(n.dp, n.endpoints, st); err != nil {
		return err
	}
	if len(lb.Status) > 0 {
		var errs []string
		for _, e := range lb.Status {
			errs = append(errs, e.Object+": "+e.Error)
		}
		return fmt.Errorf("services refused: %s", strings.Join(errs, "; "))
	}
	if err := n.dp.SyncServices(datapathstate.Services(lb, &n.svcIDs)); err != nil {
		return fmt.Errorf("write services: %w", err)
	}
	return nil
}

// node is the node's datapath, loaded (or taken from the pool) with its
// node device settings the first time.
func (s *session) node(name string, nd datapath.NodeDevice) (*node, error) {
	if n, ok := s.nodes[name]; ok {
		return n, nil
	}
	p, err := s.runner.acquire(nd)
	if err != nil {
		return nil, err
	}
	n := &node{name: name, dp: p.dp, pool: p, endpoints: map[string]datapath.Endpoint{}}
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

// nodeDevice is a node's device configured as sim's agents run it: the
// node's addresses for NodePorts and source NAT, and masquerading of pods'
// traffic to anything but the cluster's pods and nodes.
func nodeDevice(c *engine.Cluster, name string) datapath.NodeDevice {
	nd := datapath.NodeDevice{Masquerade: true}
	for _, a := range c.NodeIPs[name] {
		if a.Is4() && !nd.IPv4.IsValid() {
			nd.IPv4 = a
		} else if a.Is6() && !nd.IPv6.IsValid() {
			nd.IPv6 = a
		}
	}
	for _, n := range c.Nodes {
		nd.NonMasqueradeCIDRs = append(nd.NonMasqueradeCIDRs, c.PodCIDRs[n]...)
		for _, a := range c.NodeIPs[n] {
			nd.NonMasqueradeCIDRs = append(nd.NonMasqueradeCIDRs, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return nd
}
