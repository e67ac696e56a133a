package datapath

import "fmt"

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
	if err := clearMap[lxcCtKey, lxcCtEntry](d.objs.Conntrack); err != nil {
		return fmt.Errorf("conntrack: flush: %w", err)
	}
	return nil
}
