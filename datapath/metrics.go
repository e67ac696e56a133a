package datapath

import "fmt"

// CounterKey selects one counter: packets of a direction with a drop reason
// (reason 0: forwarded).
type CounterKey struct {
	Reason    DropReason
	Direction Direction
}

// Counter is a packet and byte count summed over all CPUs.
type Counter struct {
	Packets, Bytes uint64
}

// Counters returns every non-zero counter.
func (d *Datapath) Counters() (map[CounterKey]Counter, error) {
	out := map[CounterKey]Counter{}
	var perCPU []lxcMetricsValue
	for slot := uint32(0); slot < d.objs.Metrics.MaxEntries(); slot++ {
		if err := d.objs.Metrics.Lookup(slot, &perCPU); err != nil {
			return nil, fmt.Errorf("read counters slot %d: %w", slot, err)
		}
		var c Counter
		for _, v := range perCPU {
			c.Packets += v.Packets
			c.Bytes += v.Bytes
		}
		if c.Packets > 0 {
			out[CounterKey{Reason: DropReason(slot / 2), Direction: Direction(slot % 2)}] = c
		}
	}
	return out, nil
}

// EventsLost returns how many events the ring buffer could not take, summed
// over all CPUs.
func (d *Datapath) EventsLost() (uint64, error) {
	var perCPU []uint64
	if err := d.objs.EventsLost.Lookup(uint32(0), &perCPU); err != nil {
		return 0, fmt.Errorf("read lost-event count: %w", err)
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n, nil
}
