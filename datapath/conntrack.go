package datapath

import (
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ctMaps are the two conntrack tables: TCP, and everything else.
func (d *Datapath) ctMaps() []*ebpf.Map { return []*ebpf.Map{d.objs.CtTcp, d.objs.CtAny} }

// ConntrackEntries returns how many flows are tracked (expired ones included
// until the datapath, a flush or GCConntrack removes them).
func (d *Datapath) ConntrackEntries() (int, error) {
	n := 0
	err := d.walkConntrack(func(lxcCtKey, lxcCtEntry) bool { n++; return false })
	return n, err
}

// walkConntrack calls f on every entry of both tables and deletes those for
// which it returns true.
func (d *Datapath) walkConntrack(f func(lxcCtKey, lxcCtEntry) bool) error {
	for _, m := range d.ctMaps() {
		if err := deleteWhere(m, f); err != nil {
			return fmt.Errorf("conntrack: %s: %w", m, err)
		}
	}
	return nil
}

// FlushConntrack forgets every tracked flow.
func (d *Datapath) FlushConntrack() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.walkConntrack(func(lxcCtKey, lxcCtEntry) bool { return true })
}

// GCConntrack removes the entries whose lifetime has passed and returns how
// many went. The programs only notice an expired entry when its flow sends
// again; this reclaims the rest.
func (d *Datapath) GCConntrack() (int, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, fmt.Errorf("conntrack gc: read clock: %w", err)
	}
	now := uint64(ts.Nano())
	n := 0
	err := d.walkConntrack(func(_ lxcCtKey, v lxcCtEntry) bool {
		if v.ExpiresNs <= now {
			n++
			return true
		}
		return false
	})
	return n, err
}

// forgetFlowsOf removes the entries these addresses' endpoint owns: its
// egress entries (it is the source) and its ingress entries (it is the
// destination). Callers hold d.mu.
func (d *Datapath) forgetFlowsOf(addrs []netip.Addr) error {
	if len(addrs) == 0 {
		return nil
	}
	owned := map[[4]uint32]bool{}
	for _, a := range addrs {
		w, _ := addrWords(a)
		owned[w] = true
	}
	egress := uint8(lxcTrafficDirectionDIR_EGRESS)
	return d.walkConntrack(func(k lxcCtKey, _ lxcCtEntry) bool {
		if k.Direction == egress {
			return owned[k.Saddr.Addr]
		}
		return owned[k.Daddr.Addr]
	})
}

// ConntrackTable describes one conntrack table's size.
type ConntrackTable struct {
	Name        string
	MaxEntries  uint32
	MemoryBytes uint64 // preallocated: the kernel's LRU hash allocates every element up front
}

// htabElemOverhead is the kernel's per-element header of a preallocated hash
// map (struct htab_elem with its LRU node) on 64-bit kernels.
const htabElemOverhead = 48

// ConntrackTables reports the size and memory of the conntrack tables.
func (d *Datapath) ConntrackTables() []ConntrackTable {
	var out []ConntrackTable
	for _, m := range d.ctMaps() {
		info, err := m.Info()
		name := "conntrack"
		if err == nil {
			name = info.Name
		}
		per := uint64(roundUp8(m.KeySize()) + roundUp8(m.ValueSize()) + htabElemOverhead)
		out = append(out, ConntrackTable{Name: name, MaxEntries: m.MaxEntries(), MemoryBytes: per * uint64(m.MaxEntries())})
	}
	return out
}

func roundUp8(n uint32) uint32 { return (n + 7) &^ 7 }
