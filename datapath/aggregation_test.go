package datapath_test

import (
	"testing"

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
