package datapath

import "fmt"

// EventsLost returns how many events the programs could not write because
// the ring buffer was full, summed over CPUs, since load (or Reset).
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
