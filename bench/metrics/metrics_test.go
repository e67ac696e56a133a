package metrics

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSummarizeTakesMedianMinMaxOverRuns(t *testing.T) {
	m := Summarize("x", "ns", Lower, []float64{5, 1, 3, 2})
	if m.Median != 2.5 || m.Min != 1 || m.Max != 5 || m.Runs != 4 {
		t.Fatalf("got %+v", m)
	}
	if s := m.Spread(); s != 4/2.5 {
		t.Fatalf("spread %g", s)
	}
}

func TestCompareFailsOnARegressionBeyondTheThresholdOnly(t *testing.T) {
	old := &Results{Metrics: []Metric{
		{Name: "a/lower", Unit: UnitRatio, Better: Lower, Median: 2, Min: 1.95, Max: 2.05, Runs: 3},
		{Name: "b/higher", Unit: "ops", Better: Higher, Median: 100, Min: 99, Max: 101, Runs: 3},
		{Name: "c/noisy", Unit: UnitRatio, Better: Lower, Median: 2, Min: 1, Max: 3, Runs: 3},
		{Name: "d/small", Unit: UnitRatio, Better: Lower, Median: 2, Min: 2, Max: 2, Runs: 3},
		{Name: "e/only-old", Unit: UnitRatio, Better: Lower, Median: 1, Min: 1, Max: 1, Runs: 1},
	}}
	new := &Results{Metrics: []Metric{
		{Name: "a/lower", Unit: UnitRatio, Better: Lower, Median: 2.5, Min: 2.45, Max: 2.55, Runs: 3}, // 25% worse
		{Name: "b/higher", Unit: "ops", Better: Higher, Median: 80, Min: 79, Max: 81, Runs: 3},        // 20% worse
		{Name: "c/noisy", Unit: UnitRatio, Better: Lower, Median: 4, Min: 3.9, Max: 4.1, Runs: 3},     // worse, but old was noisy
		{Name: "d/small", Unit: UnitRatio, Better: Lower, Median: 2.1, Min: 2.09, Max: 2.11, Runs: 3}, // 5%: within
		{Name: "f/only-new", Unit: UnitRatio, Better: Lower, Median: 9, Min: 9, Max: 9, Runs: 1},
	}}
	rows := Compare(old, new, 0.10)
	if len(rows) != 4 {
		t.Fatalf("want the 4 metrics in both, got %+v", rows)
	}
	got := Regressions(rows)
	if strings.Join(got, ",") != "a/lower,b/higher" {
		t.Fatalf("regressions %v", got)
	}
	if !rows[2].Noisy || rows[2].Name != "c/noisy" {
		t.Fatalf("c not noisy: %+v", rows[2])
	}
	var out bytes.Buffer
	PrintTable(&out, rows, 0.10)
	for _, want := range []string{"a/lower", "REGRESSED", "noisy", "+25.0%", "+20.0%"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReadNamesTheBadField(t *testing.T) {
	dir := t.TempDir()
	for body, want := range map[string]string{
		`{"metrics":[{"name":"x","unit":"ns","better":"up","median":1,"min":1,"max":1,"runs":1}]}`:    "metrics[0].better",
		`{"metrics":[{"name":"x","unit":"ns","better":"lower","median":1,"min":2,"max":3,"runs":1}]}`: "min <= median <= max",
		`{"metrics":[{"name":"","unit":"ns","better":"lower","median":1,"min":1,"max":1,"runs":1}]}`:  "metrics[0].name",
		`{"metrics":[{"name":"x","unit":"ns","better":"lower","median":1,"min":1,"max":1,"runs":0}]}`: "metrics[0].runs",
	} {
		p := filepath.Join(dir, "r.json")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Read(p)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want one naming %s and the file", body, err, want)
		}
	}
	r := &Results{Metrics: []Metric{Summarize("x", "ns", Lower, []float64{1, 2, 3})}}
	p := filepath.Join(dir, "ok.json")
	if err := r.Write(p); err != nil {
		t.Fatal(err)
	}
	back, err := Read(p)
	if err != nil || len(back.Metrics) != 1 || back.Metrics[0] != r.Metrics[0] {
		t.Fatalf("round trip: %v %+v", err, back)
	}
}
