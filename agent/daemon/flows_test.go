package daemon

import (
	"testing"

	"github.com/kestrelnet/kestrel/agent/api"
)

func TestFlowRingKeepsTheNewestInOrderAndCountsTheLost(t *testing.T) {
	var r flowRing
	if got := r.since(0); len(got.Flows) != 0 || got.Next != 0 {
		t.Fatalf("empty ring: %+v", got)
	}
	total := uint64(FlowCapacity + 10)
	for i := uint64(1); i <= total; i++ {
		r.add(api.Flow{TimeNs: i})
	}
	got := r.since(0)
	if len(got.Flows) != FlowCapacity || got.Lost != 10 || got.Next != total {
		t.Fatalf("from 0: %d flows, lost %d, next %d; want %d, 10, %d", len(got.Flows), got.Lost, got.Next, FlowCapacity, total)
	}
	for i, f := range got.Flows {
		if want := uint64(11 + i); f.Seq != want || f.TimeNs != want {
			t.Fatalf("flow %d: seq %d time %d, want %d", i, f.Seq, f.TimeNs, want)
		}
	}
	got = r.since(total - 3)
	if len(got.Flows) != 3 || got.Lost != 0 || got.Flows[0].Seq != total-2 {
		t.Fatalf("from %d: %+v", total-3, got)
	}
	if got := r.since(total); len(got.Flows) != 0 || got.Next != total {
		t.Fatalf("caught up: %+v", got)
	}
}
