package sim

// On a cluster whose CNI chooses pod addresses (a PodExec backend), a scenario's
// pods do not get the addresses the engine gave them. The runner maps each
// scenario pod address to the live one (same pod, same family): in probes, in
// the answers servers give (the client address they saw), and in the manifests,
// where an ipBlock naming a pod (a /32 or /128 of its address) must name the
// live pod. Wider CIDRs are left as written: they hold the live pods too when
// the cluster's pod range is the scenario's (10.244.0.0/16, kind's and
// kubeadm's usual), which the README asks of a cluster under test.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/kestrelnet/kestrel/scenarios/engine"
)

// addrMap maps scenario pod addresses to live ones.
type addrMap map[netip.Addr]netip.Addr

// liveAddrs maps every pod of c, once Ready, from its scenario addresses to
// the ones the cluster gave it, family by family.
func (r *Runner) liveAddrs(c *engine.Cluster) (addrMap, error) {
	m := addrMap{}
	for _, p := range c.Pods {
		key := p.Namespace + "/" + p.Name
		live := r.live.pods[key]
		for _, w := range p.Status.PodIPs {
			want, err := netip.ParseAddr(w.IP)
			if err != nil {
				return nil, fmt.Errorf("pod %s: scenario address %q: %w", key, w.IP, err)
			}
			found := false
			for _, l := range live.ips {
				if a, err := netip.ParseAddr(l); err == nil && a.Is4() == want.Is4() {
					m[want], found = a, true
					break
				}
			}
			if !found {
				return nil, fmt.Errorf("pod %s has no %s address (it has %v); the scenario gives it %s", key, family(want), live.ips, want)
			}
		}
	}
	return m, nil
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// live is a's live address (a itself when it is no scenario pod's).
func (m addrMap) live(a netip.Addr) netip.Addr {
	if l, ok := m[a]; ok {
		return l
	}
	return a
}

// scenario is the scenario address of live address a (a when none).
func (m addrMap) scenario(a netip.Addr) netip.Addr {
	for s, l := range m {
		if l == a {
			return s
		}
	}
	return a
}

// manifests returns ms with the scenario pod addresses they name replaced by
// the live ones (rewrite).
func (m addrMap) manifests(ms []engine.Manifest) ([]engine.Manifest, error) {
	out := make([]engine.Manifest, len(ms))
	for i, man := range ms {
		var obj any
		if err := json.Unmarshal(man.JSON, &obj); err != nil {
			return nil, fmt.Errorf("%s: %w", man.Source, err)
		}
		b, err := json.Marshal(m.rewrite(obj, ""))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", man.Source, err)
		}
		out[i] = man
		out[i].JSON = b
	}
	return out, nil
}

// rewrite maps full-length prefixes of pod addresses anywhere (ipBlock cidr
// and except: a label value cannot hold "/"), and bare pod addresses in an
// EndpointSlice's endpoints (key "addresses").
func (m addrMap) rewrite(v any, key string) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = m.rewrite(x, k)
		}
	case []any:
		for i, x := range t {
			t[i] = m.rewrite(x, key)
		}
	case string:
		if a, err := netip.ParseAddr(t); err == nil && key == "addresses" {
			return m.live(a).String()
		}
		if p, err := netip.ParsePrefix(t); err == nil && p.IsSingleIP() {
			if l, ok := m[p.Addr()]; ok {
				return netip.PrefixFrom(l, l.BitLen()).String()
			}
		}
	}
	return v
}

// syncLive is Sync on a PodExec backend: pods first, then, with their live
// addresses known, the manifests, then the agents' policy revision where
// Kestrel's agents are read, else Settle, for the cluster to enforce them.
func (s *session) syncLive(ctx context.Context, c *engine.Cluster, pe PodExec) error {
	if c.DNS != nil {
		return fmt.Errorf("spec.dns: %s mode cannot stand in for the cluster DNS", pe.Mode())
	}
	if err := s.r.applyWorkloads(ctx, c); err != nil {
		return err
	}
	if err := s.r.waitPodsReady(ctx, c.Pods); err != nil {
		return err
	}
	addrs, err := s.r.liveAddrs(c)
	if err != nil {
		return err
	}
	ms, err := addrs.manifests(c.Manifests)
	if err != nil {
		return err
	}
	if err := s.r.applyManifests(ctx, ms); err != nil {
		return err
	}
	s.addrs = addrs
	if s.r.readsAgents(ctx) {
		// Kestrel's agents say when what was applied is enforced, as in
		// sim (marker.go). Services have no such revision here (their
		// backends are the live pods): they are given Settle.
		rev, err := s.r.bumpMarkers(ctx)
		if err != nil {
			return err
		}
		if err := s.r.waitAgents(ctx, rev); err != nil {
			return err
		}
		if len(s.frontends) == 0 {
			return nil
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(pe.Settle()):
	}
	return nil
}
