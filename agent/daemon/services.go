package daemon

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/agent/datapathstate"
	"github.com/kestrelnet/kestrel/agent/k8s"
	"github.com/kestrelnet/kestrel/agent/service"
)

// computeServices derives this node's load-balancing state from the caches,
// reports it (`kestrel service list`) and writes its ClusterIPs to the
// datapath. A failed write leaves the previous services in place and is the
// regeneration's error.
func (d *Daemon) computeServices(snap k8s.Snapshot) error {
	st := d.buildServices(snap)
	// The health check ports follow the state whether or not the maps
	// take it: they report the node's local endpoints, not the maps.
	d.syncHealth(snap, st.HealthChecks)
	err := d.writeServices(st)
	d.svcWritten = err == nil
	// Reported (kestrel service list, flows' Service names) once written,
	// so a reader never sees a service the datapath does not translate yet.
	d.svcMu.Lock()
	d.services = st
	d.svcMu.Unlock()
	d.flowServices.Store(newLazyServiceIndex(st))
	if err != nil {
		return fmt.Errorf("write services: %w", err)
	}
	return nil
}

// writeServices writes what Build changed when the datapath holds the last
// State's services (the last write succeeded) and Build knows the
// difference: the cost is the change's, whatever the number of services.
// Otherwise it writes the whole set, which the datapath compares with what
// it holds.
func (d *Daemon) writeServices(st service.State) error {
	if delta := d.svcCache.Delta(); d.svcWritten && !delta.Full {
		upsert, remove := datapathstate.ServicesDelta(delta, &d.lbIDs)
		if len(upsert) == 0 && len(remove) == 0 {
			return nil
		}
		return d.dp.ApplyServices(upsert, remove)
	}
	return d.dp.SyncServices(datapathstate.Services(st, &d.lbIDs))
}

// buildServices builds the load-balancing state from the last one and the
// services the informers saw change, when it can: one EndpointSlice change
// among 10k services then reads that service's objects alone. Otherwise
// (the first time, after a refusal, with hostPorts) it builds from every
// Service and EndpointSlice. snap has no services (SnapshotWithoutServices).
func (d *Daemon) buildServices(snap k8s.Snapshot) service.State {
	in := d.serviceInput(snap)
	names := d.watch.ServiceChanges()
	changed := make([]service.Changed, 0, len(names))
	for name := range names {
		svc, slices := d.watch.ServiceObjects(name)
		changed = append(changed, service.Changed{Name: name, Service: svc, Slices: slices})
	}
	// In name order, so that new frontends get their ids in a fixed order.
	sort.Slice(changed, func(i, j int) bool { return changed[i].Name.String() < changed[j].Name.String() })
	if st, ok := service.BuildChanged(in.Config, in.Pods, d.svcCache, changed); ok {
		return st
	}
	in.Services, in.EndpointSlices = d.watch.ServiceLists()
	in.Cache = d.svcCache
	return service.Build(in)
}

// serviceInput is what the load-balancing state is built from.
func (d *Daemon) serviceInput(snap k8s.Snapshot) service.Input {
	return service.Input{
		Config: service.Config{
			NodeName: d.cfg.Node,
			// NodePorts are served on every InternalIP of this node
			// (both families), and on --node-ip before the Node says so.
			NodeIPs:      nodeAddresses(snap.Nodes, d.cfg.Node, d.cfg.NodeIP)[d.cfg.Node],
			ServiceCIDRs: d.cfg.ServiceCIDRs,
		},
		Services:       snap.Services,
		EndpointSlices: snap.EndpointSlices,
		Pods:           snap.Pods,
	}
}

// Services implements api.ServiceSource.
func (d *Daemon) Services() api.Services {
	d.svcMu.Lock()
	st := d.services
	d.svcMu.Unlock()
	out := api.Services{Services: []api.Service{}}
	for _, f := range st.Frontends {
		s := api.Service{
			Frontend:        netip.AddrPortFrom(f.Addr, f.Port).String() + "/" + string(f.Protocol),
			Type:            f.Kind.String(),
			Service:         f.Service.String(),
			Action:          f.Action.String(),
			InternalLocal:   f.InternalPolicyLocal,
			ExternalLocal:   f.ExternalPolicyLocal,
			AffinitySeconds: int(f.AffinityTimeout.Seconds()),
		}
		for _, b := range f.Backends {
			s.Backends = append(s.Backends, api.ServiceBackend{Address: b.String(), Node: b.NodeName, Local: b.Local, Terminating: b.Terminating})
		}
		out.Services = append(out.Services, s)
	}
	for _, e := range st.Status {
		out.Errors = append(out.Errors, e.Object+": "+e.Error)
	}
	return out
}
