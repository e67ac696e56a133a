package daemon

import "github.com/kestrelnet/kestrel/agent/api"

// Identities implements api.IdentitySource: every identity the last
// regeneration numbered (reserved, pod, CIDR and toFQDNs addresses) with
// its labels.
func (d *Daemon) Identities() []api.Identity {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []api.Identity{}
	if d.identityAlloc == nil {
		return out
	}
	for _, id := range d.identityAlloc.IDs() {
		ls, _ := d.identityAlloc.Labels(id)
		out = append(out, api.Identity{ID: uint32(id), Labels: labelStrings(ls)})
	}
	return out
}
