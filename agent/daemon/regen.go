package daemon

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/kestrelnet/kestrel/agent/datapathstate"
	"github.com/kestrelnet/kestrel/agent/identity"
	"github.com/kestrelnet/kestrel/agent/policy"
)

const maxBackoff = 10 * time.Second

// loop regenerates after every burst of changes, and retries a failed
// regeneration with growing delays even if nothing changes.
func (d *Daemon) loop(ctx context.Context) {
	var backoff time.Duration
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
		case <-retry:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(d.cfg.Debounce):
		}
		select { // changes during the debounce are part of this regeneration
		case <-d.kick:
		default:
		}
		start := time.Now()
		if err := d.regenerate(); err != nil {
			backoff = min(max(2*backoff, 100*time.Millisecond), maxBackoff)
			retry = time.After(backoff)
			d.log.Error("regeneration failed; the datapath keeps its previous state", "err", err, "retry_in", backoff)
			continue
		}
		backoff, retry = 0, nil
		d.proxyHealth.Updated()
		d.log.Debug("regenerated", "took", time.Since(start).Round(time.Microsecond))
	}
}

// regenerate computes this node's datapath state from the caches and the
// endpoint registry, validates all of it, and only then writes it.
func (d *Daemon) regenerate() (err error) {
	start := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	defer func() {
		d.metrics.regeneration.WithLabelValues("total").Observe(time.Since(start).Seconds())
		d.lastErr = err
		d.programmed = d.programmed || err == nil
		d.generations++
		close(d.changed)
		d.changed = make(chan struct{})
	}()
	// Services are read by what changed (computeServices), not listed.
	snap := d.watch.SnapshotWithoutServices()
	records := d.registry.List()
	var pols []policy.Object
	var problems []string
	for _, p := range snap.Policies {
		if p.Err != nil {
			problems = append(problems, p.Err.Error())
			continue
		}
		pols = append(pols, p.Parsed)
	}
	// A policy whose headerMatches Secret cannot be read stays in force and
	// its match fails closed (the proxy denies what it would decide);
	// `kestrel status` names it.
	for _, e := range policy.CheckSecrets(pols, snap.Secrets) {
		problems = append(problems, e.Error()+" (the header match fails closed)")
	}
	d.policyErrors = problems
	d.warnPolicies(pols)
	d.policies = len(pols)
	d.policyEvents(pols, snap.Revision)
	pods := podsForResolve(snap.Pods, records)
	res, err := policy.Resolve(policy.Input{
		ClusterName: d.cfg.ClusterName,
		Namespaces:  snap.Namespaces,
		Pods:        pods,
		Policies:    pols,
		Secrets:     snap.Secrets,
		// Keep identity numbers across regenerations.
		PreviousIdentities: d.identityAlloc,
		FQDNs:              d.fqdns.Names(),
	})
	if err != nil {
		return fmt.Errorf("resolve policy: %w", err)
	}
	if err := d.keepIdentities(res.Identities); err != nil {
		return err
	}
	peers := buildPeerIndex(pods, res.Identities)
	nodeIPs := nodeAddresses(snap.Nodes, d.cfg.Node, d.cfg.NodeIP)
	ls := locals(records)
	st, err := datapathstate.Compute(res, d.cfg.Node, nodeIPs, ls, d.cookies)
	if err != nil {
		return err
	}
	// An endpoint whose pod left the API before the CNI plugin removed it
	// keeps what it had: its sandbox still exists until the CNI DEL.
	for _, key := range st.Pending {
		if old, ok := d.installed[key]; ok {
			st.Endpoints[key] = old
			st.Identity[key] = old.Identity
		}
	}
	d.installed, err = datapathstate.Apply(d.dp, d.installed, st)
	if err != nil {
		return fmt.Errorf("write datapath: %w", err)
	}
	pending := map[string]bool{}
	for _, key := range st.Pending {
		pending[key] = true
	}
	for _, r := range records {
		if _, ok := st.Endpoints[r.ContainerID]; ok && !pending[r.ContainerID] {
			if d.installedSeq[r.ContainerID] != r.Seq {
				d.regeneratedEvent(d.installed[r.ContainerID].ID, peers.peer(firstIP(r.IPs), d.installed[r.ContainerID].Identity).Labels)
			}
			d.installedSeq[r.ContainerID] = r.Seq
		}
		if ep, ok := res.Endpoints[r.Pod()]; ok && d.installed[r.ContainerID].ID != 0 {
			peers.addEnforcers(d.installed[r.ContainerID].ID, ep.Policy)
		}
	}
	d.peers.Store(peers)
	d.identities = st.Identity
	d.l7.Set(res, st, ls)
	if err := d.computeServices(snap); err != nil {
		return err
	}
	d.revision = max(d.revision, snap.Revision)
	for name, rev := range snap.Revisions {
		d.revisions[name] = max(d.revisions[name], rev)
	}
	return nil
}

// keepIdentities makes a's numbers the ones the next resolution keeps, and
// saves them for the next agent when they changed. It runs before the
// datapath is written, so a number in the maps is always in the file.
func (d *Daemon) keepIdentities(a *identity.Allocator) error {
	d.identityAlloc = a
	n := a.Numbering()
	if reflect.DeepEqual(n, d.savedIDs) {
		return nil
	}
	if err := identity.SaveNumbering(d.cfg.IdentityPath, n); err != nil {
		return fmt.Errorf("save identity numbering: %w", err)
	}
	d.savedIDs = n
	return nil
}
