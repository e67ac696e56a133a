package daemon

// The toFQDNs cache is saved in the agent's state directory on every
// change and restored in New, before the first regeneration: the restarted
// agent's first policy already selects what pods resolved, so their
// established connections to toFQDNs peers are never denied in between
// (Cilium restores its DNS cache from the endpoints' state for the same
// reason). Expiry is absolute, so time spent down counts against the TTL.

// restoreFQDNs loads the saved cache, keeping only the lookups of endpoints
// the registry still holds. A damaged file costs the pods a new lookup, not
// the agent its start, so it is logged, not fatal.
func (d *Daemon) restoreFQDNs() {
	d.fqdns.MinTTL = d.cfg.ToFQDNsMinTTL
	known := map[uint32]bool{}
	for _, r := range d.registry.List() {
		known[r.ID] = true
	}
	n, err := d.fqdns.Load(d.cfg.FQDNCachePath, func(ep uint32) bool { return known[ep] })
	if err != nil {
		d.log.Warn("toFQDNs cache not restored; pods' next lookups rebuild it", "err", err)
		return
	}
	if n > 0 {
		d.log.Info("toFQDNs cache restored", "entries", n, "path", d.cfg.FQDNCachePath)
	}
}

// saveFQDNs writes the cache; a failure is logged (the cache in memory is
// still right, only a restart would lose it).
func (d *Daemon) saveFQDNs() {
	if err := d.fqdns.Save(d.cfg.FQDNCachePath); err != nil {
		d.log.Error("toFQDNs cache not saved", "err", err)
	}
}

// forgetFQDNs drops a removed endpoint's lookups (Cilium drops an
// endpoint's DNS history with it); the caller regenerates, so addresses no
// other endpoint asked for stop being selected.
func (d *Daemon) forgetFQDNs(endpoint uint32) {
	d.fqdns.ForgetEndpoint(endpoint)
	d.saveFQDNs()
}
