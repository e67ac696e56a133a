package datapath

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// ConntrackEntries returns how many flows are tracked (expired ones included
// until the datapath or a flush removes them).
func (d *Datapath) ConntrackEntries() (int, error) {
	var k lxcCtKey
	var v lxcCtEntry
	n := 0
	it := d.objs.Conntrack.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	return n, it.Err()
}

// FlushConntrack forgets every tracked flow.
func (d *Datapath) FlushConntrack() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var keys []lxcCtKey
	var k lxcCtKey
	var v lxcCtEntry
	it := d.objs.Conntrack.Iterate()
	for it.Next(&k, &v) {
		keys = append(keys, k)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("conntrack: iterate: %w", err)
	}
	for i := range keys {
		if err := d.objs.Conntrack.Delete(&keys[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("conntrack: delete: %w", err)
		}
	}
	return nil
}
