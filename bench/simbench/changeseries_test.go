package simbench

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/kestrelnet/kestrel/bench/metrics"
)

// fakeChanges is a cluster whose datapaths apply each change after a set
// delay (by name), on a clock of its own: nothing here sleeps or reads the
// time. Each update advances the clock by a millisecond.
type fakeChanges struct {
	now     time.Time
	delay   map[string]time.Duration // how long each datapath takes per change
	slowAt  map[string]int           // from this update on (0 = the known start), slow[name] instead
	slow    map[string]time.Duration
	updates int
	stopped []string
	// waits lists every wait: datapath and endpoint.
	waits []string
}

func (f *fakeChanges) setOnly(b int) (time.Time, error) {
	f.now = f.now.Add(time.Millisecond)
	f.updates++
	return f.now, nil
}

func (f *fakeChanges) until(d datapath, b int, since, deadline time.Time) (time.Duration, error) {
	f.waits = append(f.waits, fmt.Sprintf("%s echo-%d", d.Name, b))
	took := f.delay[d.Name]
	if at, ok := f.slowAt[d.Name]; ok && f.updates-1 >= at {
		took = f.slow[d.Name]
	}
	if since.Add(took).After(deadline) {
		f.now = deadline
		return 0, errNotReachable{fmt.Sprintf("echo-%d not within the limit", b)}
	}
	if end := since.Add(took); end.After(f.now) {
		f.now = end
	}
	return took, nil
}

func (f *fakeChanges) leaveOut(d datapath) error {
	f.stopped = append(f.stopped, d.Name)
	return nil
}

func names(ms []metrics.Metric) map[string][]float64 {
	out := map[string][]float64{}
	for _, m := range ms {
		out[m.Name] = []float64{m.Median, m.Min, m.Max, float64(m.Runs)}
	}
	return out
}

var threeDatapaths = []datapath{{Name: "kestrel", Node: 1}, {Name: "iptables", Node: 2}, {Name: "nftables", Node: 4}}

// Every datapath within the limit: each its own api-to-reachable over the
// runs, nothing left out, and the next datapath timed only once every
// datapath reached the last state.
func TestChangeSeriesRecordsEachDatapathsChanges(t *testing.T) {
	f := &fakeChanges{delay: map[string]time.Duration{"kestrel": 50 * time.Millisecond, "iptables": 6 * time.Second, "nftables": 9 * time.Second}}
	out, err := changeSeries(f, threeDatapaths, 10000, 3, 20*time.Second, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float64{
		"endpoint-change/kestrel/services=10000/api-to-reachable":  {50, 50, 50, 3},
		"endpoint-change/iptables/services=10000/api-to-reachable": {6000, 6000, 6000, 3},
		"endpoint-change/nftables/services=10000/api-to-reachable": {9000, 9000, 9000, 3},
	}
	if got := names(out); !reflect.DeepEqual(got, want) {
		t.Fatalf("metrics:\n got %v\nwant %v", got, want)
	}
	if len(f.stopped) > 0 {
		t.Fatalf("stopped %v, none missed the limit", f.stopped)
	}
	// Known start (all three at echo-0), kestrel's 3 changes, then all three
	// at its last state (echo-1), and so on.
	wantWaits := []string{"kestrel echo-0", "iptables echo-0", "nftables echo-0",
		"kestrel echo-1", "kestrel echo-0", "kestrel echo-1", "kestrel echo-1", "iptables echo-1", "nftables echo-1",
		"iptables echo-0", "iptables echo-1", "iptables echo-0", "kestrel echo-0", "iptables echo-0", "nftables echo-0",
		"nftables echo-1", "nftables echo-0", "nftables echo-1", "kestrel echo-1", "iptables echo-1", "nftables echo-1"}
	if !reflect.DeepEqual(f.waits, wantWaits) {
		t.Fatalf("waits:\n got %v\nwant %v", f.waits, wantWaits)
	}
}

// A datapath slower than the limit at its own first change: recorded as
// not reachable after the limit (no api-to-reachable from the changes it
// did not finish), stopped, and not waited for again; the run goes on.
func TestChangeSeriesRecordsASlowChangeAndGoesOn(t *testing.T) {
	f := &fakeChanges{delay: map[string]time.Duration{"kestrel": 50 * time.Millisecond, "iptables": 6 * time.Second, "nftables": 9 * time.Second},
		// nftables' own series starts at update 7 (known start, then 3+3).
		slowAt: map[string]int{"nftables": 7}, slow: map[string]time.Duration{"nftables": 45 * time.Second}}
	var lines []string
	out, err := changeSeries(f, threeDatapaths, 10000, 3, 20*time.Second, func(s string) { lines = append(lines, s) })
	if err != nil {
		t.Fatal(err)
	}
	got := names(out)
	if m := got["endpoint-change/nftables/services=10000/not-reachable-after"]; !reflect.DeepEqual(m, []float64{20, 20, 20, 1}) {
		t.Fatalf("nftables not-reachable-after: %v (metrics %v)", m, got)
	}
	if _, ok := got["endpoint-change/nftables/services=10000/api-to-reachable"]; ok {
		t.Fatalf("nftables has an api-to-reachable although a change missed the limit: %v", got)
	}
	if len(got["endpoint-change/kestrel/services=10000/api-to-reachable"]) == 0 || len(got["endpoint-change/iptables/services=10000/api-to-reachable"]) == 0 {
		t.Fatalf("the others were not recorded: %v", got)
	}
	if !reflect.DeepEqual(f.stopped, []string{"nftables"}) {
		t.Fatalf("stopped %v, want nftables", f.stopped)
	}
	last := f.waits[len(f.waits)-3:]
	if !reflect.DeepEqual(last, []string{"nftables echo-1", "kestrel echo-1", "iptables echo-1"}) {
		t.Fatalf("after nftables missed, the waits were %v: want only the others", last)
	}
}

// A datapath that misses the known start is never measured at that size:
// recorded once, stopped, and the others measured without waiting for it.
// One already measured that later misses the limit on another's change is
// stopped without a second figure.
func TestChangeSeriesLeavesOutWhoMissesTheConvergence(t *testing.T) {
	f := &fakeChanges{delay: map[string]time.Duration{"kestrel": 50 * time.Millisecond, "iptables": 6 * time.Second, "nftables": 45 * time.Second},
		slowAt: map[string]int{"kestrel": 4}, slow: map[string]time.Duration{"kestrel": time.Minute}}
	out, err := changeSeries(f, threeDatapaths, 1000, 3, 20*time.Second, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float64{
		"endpoint-change/nftables/services=1000/not-reachable-after": {20, 20, 20, 1},
		"endpoint-change/kestrel/services=1000/api-to-reachable":     {50, 50, 50, 3},
		"endpoint-change/iptables/services=1000/api-to-reachable":    {6000, 6000, 6000, 3},
	}
	if got := names(out); !reflect.DeepEqual(got, want) {
		t.Fatalf("metrics:\n got %v\nwant %v", got, want)
	}
	if !reflect.DeepEqual(f.stopped, []string{"nftables", "kestrel"}) {
		t.Fatalf("stopped %v, want nftables (known start), then kestrel (after iptables' changes)", f.stopped)
	}
}
