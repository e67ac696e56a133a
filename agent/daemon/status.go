package daemon

import (
	"context"
	"fmt"
	"maps"

	"github.com/kestrelnet/kestrel/agent/api"
)

// Status reports the local endpoints as installed and the policy revision.
func (d *Daemon) Status(context.Context) api.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := api.Status{Node: d.cfg.Node, PolicyRevision: d.revision, Revisions: maps.Clone(d.revisions), PolicyErrors: d.policyErrors, PolicyWarnings: d.policyWarnings, Endpoints: []api.EndpointStatus{}}
	if d.lastErr != nil {
		st.LastError = d.lastErr.Error()
	}
	st.Datapath = d.datapathStatus()
	st.SocketLBCgroup = d.cfg.SocketLBCgroup
	for _, rec := range d.registry.List() {
		es := api.EndpointStatus{ID: rec.ID, Pod: rec.Pod(), Identity: d.identities[rec.ContainerID]}
		for _, ip := range rec.IPs {
			es.IPs = append(es.IPs, ip.String())
		}
		if ep, ok := d.installed[rec.ContainerID]; ok {
			es.IngressEnforced, es.EgressEnforced = ep.IngressEnforced, ep.EgressEnforced
		}
		st.Endpoints = append(st.Endpoints, es)
	}
	return st
}

// Healthz is nil once the caches are synced and the datapath has been
// programmed from them (it is loaded before the daemon exists): from then on
// the status describes what is enforced, also right after a restart.
func (d *Daemon) Healthz(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case !d.started:
		return fmt.Errorf("%w: informer caches not synced yet", api.ErrNotReady)
	case !d.programmed && d.lastErr != nil:
		return fmt.Errorf("%w: the datapath is not programmed yet: %v", api.ErrNotReady, d.lastErr)
	case !d.programmed:
		return fmt.Errorf("%w: the datapath is not programmed yet", api.ErrNotReady)
	}
	return nil
}

// StreamRevision returns the highest resourceVersion of one watched resource
// (such as "networkpolicies") whose effect is in the datapath.
func (d *Daemon) StreamRevision(resource string) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.revisions[resource]
}
