package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/kestrelnet/kestrel/datapath"
)

type fakeMaintenance struct{ swept chan struct{} }

func (f *fakeMaintenance) GCConntrack() (int, error) {
	select {
	case f.swept <- struct{}{}:
	default:
	}
	return 3, nil
}
func (f *fakeMaintenance) EventsLost() (uint64, error) { return 7, nil }
func (f *fakeMaintenance) ConntrackTables() []datapath.ConntrackTable {
	return []datapath.ConntrackTable{{Name: "ct_tcp", MaxEntries: 10, MemoryBytes: 1000}, {Name: "ct_any", MaxEntries: 5, MemoryBytes: 500}}
}

func TestStatusReportsTheDatapathsUpkeep(t *testing.T) {
	c := newCluster(t)
	if st := c.d.Status(context.Background()); st.Datapath != nil {
		t.Fatalf("datapath figures before maintenance runs: %+v", st.Datapath)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &fakeMaintenance{swept: make(chan struct{}, 1)}
	go c.d.RunMaintenance(ctx, f, "medium", 10*time.Millisecond)
	<-f.swept
	c.eventually("a sweep is recorded", func() bool {
		st := c.d.Status(context.Background()).Datapath
		return st != nil && st.ConntrackGC.Runs > 0
	})
	st := c.d.Status(context.Background()).Datapath
	if st.EventsLost != 7 || st.ConntrackMemoryBytes != 1500 || len(st.Conntrack) != 2 || st.MonitorAggregation != "medium" ||
		st.ConntrackGC.Removed < 3 || st.ConntrackGC.LastRun == "" {
		t.Fatalf("datapath status %+v", st)
	}
}

func (f *fakeMaintenance) Counters() (map[datapath.CounterKey]datapath.Counter, error) {
	return map[datapath.CounterKey]datapath.Counter{
		{Reason: 0, Direction: datapath.Egress}:                       {Packets: 10, Bytes: 1000},
		{Reason: datapath.DropReason(1), Direction: datapath.Ingress}: {Packets: 2, Bytes: 120},
		{Reason: datapath.DropReason(10), Direction: datapath.Egress}: {Packets: 1, Bytes: 60},
	}, nil
}
