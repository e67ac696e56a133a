package datapath

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// IPCacheEntry maps an address prefix to a security identity.
type IPCacheEntry struct {
	Prefix   netip.Prefix
	Identity uint32
}

func ipcacheKey(p netip.Prefix) lxcIpcacheKey {
	var k lxcIpcacheKey
	w, fam := addrWords(p.Masked().Addr())
	k.Ip.Addr = w
	k.Family = uint32(fam)
	k.Prefixlen = 32 + uint32(p.Bits())
	return k
}

// SyncIPCache makes the ipcache hold exactly entries: new and changed entries
// are written before stale ones are removed, so no address is ever briefly
// unknown. Input is validated in full before anything is written.
func (d *Datapath) SyncIPCache(entries []IPCacheEntry) (retErr error) {
	if limit := int(d.objs.Ipcache.MaxEntries()); len(entries) > limit {
		return fmt.Errorf("ipcache: %d entries exceed the map size %d", len(entries), limit)
	}
	want := make(map[lxcIpcacheKey]lxcIpcacheEntry, len(entries))
	for _, e := range entries {
		if !e.Prefix.IsValid() {
			return fmt.Errorf("ipcache: invalid prefix %v", e.Prefix)
		}
		k := ipcacheKey(e.Prefix)
		if old, dup := want[k]; dup && old.Identity != e.Identity {
			return fmt.Errorf("ipcache: prefix %s given two identities (%d and %d)", e.Prefix.Masked(), old.Identity, e.Identity)
		}
		want[k] = lxcIpcacheEntry{Identity: e.Identity}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var stale []lxcIpcacheKey
	changed, present := false, 0
	var k lxcIpcacheKey
	var v lxcIpcacheEntry
	it := d.objs.Ipcache.Iterate()
	for it.Next(&k, &v) {
		if w, ok := want[k]; !ok {
			stale = append(stale, k)
		} else {
			present++
			changed = changed || w != v
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("ipcache: iterate: %w", err)
	}
	for k, v := range want {
		if err := d.objs.Ipcache.Put(&k, &v); err != nil {
			return fmt.Errorf("ipcache: write %v: %w", k, err)
		}
	}
	// An address that changes identity, or falls back to a broader prefix,
	// may change any endpoint's verdict on its established flows. New
	// prefixes can too (a more specific entry under a broader one), so any
	// change at all gives every endpoint a new revision.
	if changed || len(stale) > 0 || present < len(want) {
		defer func() {
			if err := d.bumpRevisions(nil); err != nil && retErr == nil {
				retErr = err
			}
		}()
	}
	for i := range stale {
		if err := d.objs.Ipcache.Delete(&stale[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("ipcache: delete stale entry: %w", err)
		}
	}
	return nil
}
