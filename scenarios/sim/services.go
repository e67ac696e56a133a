package sim

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/agent/service"
	"github.com/kestrelnet/kestrel/scenarios/engine"
)

// servicesTimeout bounds the wait for the agents to translate the services
// as the scenario has them: the EndpointSlice controller and the agents'
// watches are not ordered with the runner's marker.
const servicesTimeout = 30 * time.Second

// frontendKey is how the agent API names a frontend: "ip:port/PROTO".
func frontendKey(p engine.Probe) string {
	proto := strings.ToUpper(p.Protocol)
	if proto == "" {
		proto = "TCP"
	}
	return netip.AddrPortFrom(p.To.IP, p.Port).String() + "/" + proto
}

// expectedFrontends are the ClusterIP frontends of c's services and the
// backends each must have: the agent's own computation over the Services, and
// the slices the EndpointSlice controller makes (or the ones written). The
// second map has every backend of each service ("namespace/name"), which
// a probe to its NodePort, LoadBalancer or external IP may reach.
func expectedFrontends(c *engine.Cluster) (map[string][]netip.AddrPort, map[string][]netip.AddrPort, error) {
	svcs, eps, err := engine.ServiceObjects(c)
	if err != nil {
		return nil, nil, err
	}
	st := service.Build(service.Input{Services: svcs, EndpointSlices: eps})
	out := map[string][]netip.AddrPort{}
	bySvc := map[string][]netip.AddrPort{}
	for _, f := range st.Frontends {
		if f.Kind != service.ClusterIP {
			continue
		}
		var bs []netip.AddrPort
		for _, b := range f.Backends {
			bs = append(bs, netip.AddrPortFrom(b.Addr, b.Port))
		}
		slices.SortFunc(bs, func(a, b netip.AddrPort) int { return a.Compare(b) })
		out[f.Key().String()] = bs
		name := f.Service.Namespace + "/" + f.Service.Name
		bySvc[name] = append(bySvc[name], bs...)
	}
	return out, bySvc, nil
}

// waitServices waits until every agent translates every expected frontend to
// exactly its backends.
func (r *Runner) waitServices(ctx context.Context, want map[string][]netip.AddrPort) error {
	if len(want) == 0 {
		return nil
	}
	agents, err := r.agents(ctx)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(servicesTimeout)
	for _, a := range agents {
		c := a.Client
		for {
			got, err := c.Services(ctx)
			diff := ""
			if err != nil {
				diff = err.Error()
			} else {
				diff = servicesDiff(want, got)
			}
			if diff == "" {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("agent %s does not translate the scenario's services after %s: %s", a.Name, servicesTimeout, diff)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// servicesDiff names the first expected frontend the agent lacks or
// translates to other backends; empty when all match.
func servicesDiff(want map[string][]netip.AddrPort, got api.Services) string {
	have := map[string][]netip.AddrPort{}
	for _, s := range got.Services {
		var bs []netip.AddrPort
		for _, b := range s.Backends {
			if a, err := netip.ParseAddrPort(b.Address); err == nil {
				bs = append(bs, a)
			}
		}
		slices.SortFunc(bs, func(a, b netip.AddrPort) int { return a.Compare(b) })
		have[s.Frontend] = bs
	}
	for _, key := range slices.Sorted(maps.Keys(want)) {
		bs, ok := have[key]
		switch {
		case !ok:
			return fmt.Sprintf("no frontend %s (errors: %v)", key, got.Errors)
		case !slices.Equal(bs, want[key]):
			return fmt.Sprintf("frontend %s goes to %v, want %v", key, bs, want[key])
		}
	}
	return ""
}
