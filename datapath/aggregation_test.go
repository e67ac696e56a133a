package datapath_test

import (
	"testing"
	"time"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

// Monitor aggregation: drops are always reported; forwarded packets of a
// tracked flow only when they say something new.
func TestMonitorAggregationReportsWhatIsNew(t *testing.T) {
	// A's side of one connection to B, then a packet A's policy denies.
	steps := []struct {
		what string
		h    datapath.Hook
		spec packet.Spec
	}{
		{"A's SYN: a new flow", datapath.FromContainer, tcp(podA, podB, 40000, 80, "SYN")},
		{"B's SYN-ACK: the reply's first flags", datapath.ToContainer, tcp(podB, podA, 80, 40000, "SYN", "ACK")},
		{"A's first ACK", datapath.FromContainer, tcp(podA, podB, 40000, 80, "ACK")},
		{"A's next ACK: nothing new", datapath.FromContainer, tcp(podA, podB, 40000, 80, "ACK")},
		{"B's ACK: nothing new", datapath.ToContainer, tcp(podB, podA, 80, 40000, "ACK")},
		{"A's FIN", datapath.FromContainer, tcp(podA, podB, 40000, 80, "FIN", "ACK")},
		{"a denied SYN to C", datapath.FromContainer, tcp(podA, podC, 40001, 80, "SYN")},
	}
	cases := []struct {
		level datapath.MonitorAggregation
		want  []int // events per step
	}{
		{datapath.MonitorAggregationNone, []int{1, 1, 1, 1, 1, 1, 1}},
		{datapath.MonitorAggregationMedium, []int{1, 1, 1, 0, 0, 1, 1}},
		{datapath.MonitorAggregationMaximum, []int{1, 1, 0, 0, 0, 1, 1}},
	}
	for _, c := range cases {
		t.Run(string(c.level), func(t *testing.T) {
			d := datapathtest.LoadConfig(t, datapath.Config{MonitorAggregation: c.level})
			setup(t, d, true, false)
			must(t, d.SetPolicy(1, []datapath.PolicyEntry{{Identity: idB, Direction: datapath.Egress, Protocol: 6, PortLo: 80}}))
			for i, s := range steps {
				frame, err := packet.Build(s.spec)
				must(t, err)
				res, err := d.Run(s.h, frame)
				must(t, err)
				if len(res.Events) != c.want[i] {
					t.Fatalf("%s: %d events, want %d", s.what, len(res.Events), c.want[i])
				}
			}
			if lost, err := d.EventsLost(); err != nil || lost != 0 {
				t.Fatalf("lost events %d (%v)", lost, err)
			}
		})
	}
}

func TestAnUnknownAggregationLevelIsRefused(t *testing.T) {
	if _, err := datapath.Load(datapath.Config{MonitorAggregation: "some"}); err == nil {
		t.Fatal("monitor aggregation \"some\" was accepted")
	}
}

// A full ring must still take drops: forwarded events stop at half the ring.
func TestDropsAreReportedWhileForwardedEventsFloodTheRing(t *testing.T) {
	d := datapathtest.LoadConfig(t, datapath.Config{EventRingBytes: 4096})
	setup(t, d, true, false)
	must(t, d.SetPolicy(1, []datapath.PolicyEntry{{Identity: idB, Direction: datapath.Egress, Protocol: 6, PortLo: 80}}))
	devA, _ := d.DeviceOf(1)
	allowed, err := packet.Build(tcp(podA, podB, 40000, 80, "SYN"))
	must(t, err)
	denied, err := packet.Build(tcp(podA, podC, 40001, 80, "SYN"))
	must(t, err)
	// Nobody reads the ring while the flood runs (timed runs do not drain it).
	if _, err := d.BenchmarkOn(datapath.FromContainer, devA, allowed, 200); err != nil {
		t.Fatal(err)
	}
	lost, err := d.EventsLost()
	must(t, err)
	if lost == 0 {
		t.Fatal("200 forwarded events fit a 4 KiB ring: the flood proved nothing")
	}
	if _, err := d.BenchmarkOn(datapath.FromContainer, devA, denied, 1); err != nil {
		t.Fatal(err)
	}
	if n, _ := d.EventsLost(); n != lost {
		t.Fatalf("the drop was lost (%d lost before it, %d after)", lost, n)
	}
	found := make(chan bool, 1)
	go func() {
		for {
			ev, err := d.ReadEvent()
			if err != nil {
				return
			}
			if ev.Verdict == datapath.VerdictDropped && ev.Dst == podC {
				found <- true
				return
			}
		}
	}()
	select {
	case <-found:
	case <-time.After(3 * time.Second):
		t.Fatal("the drop is not in the flooded ring")
	}
}
