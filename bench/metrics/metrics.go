// Package metrics is the format of `kestrel bench run`'s results.json and
// the comparison of two of them (`kestrel bench compare`).
package metrics

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
)

// Results is one run of the benchmarks on one machine.
type Results struct {
	Machine Machine  `json:"machine"`
	Metrics []Metric `json:"metrics"`
}

// Machine says where and with what the figures were measured.
type Machine struct {
	Kernel   string            `json:"kernel"`
	CPU      string            `json:"cpu"`
	CPUs     int               `json:"cpus"`
	Profile  string            `json:"profile"` // quick or full
	Started  string            `json:"started"` // RFC 3339
	Versions map[string]string `json:"versions"`
	// Layout says how the datapaths were measured (which nodes, in what order).
	Layout string `json:"layout,omitempty"`
	// Load is the load average (1, 5, 15 min, /proc/loadavg) when the run
	// started and when it ended: the machine may be shared.
	Load map[string]string `json:"load,omitempty"`
}

// Metric is one measurement over several runs. Names are stable across
// runs: datapath/size/measurement, so two results can be compared.
type Metric struct {
	Name   string  `json:"name"`
	Unit   string  `json:"unit"`
	Better string  `json:"better"` // lower or higher
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Runs   int     `json:"runs"`
}

// Better values.
const (
	Lower  = "lower"
	Higher = "higher"
)

// UnitRatio marks a metric that divides one measurement by another made in
// the same run (over the empty program, over a direct connect): the figures
// meant to compare across machines.
const UnitRatio = "ratio"

// Summarize makes a metric of one value per run.
func Summarize(name, unit, better string, runs []float64) Metric {
	m := Metric{Name: name, Unit: unit, Better: better, Runs: len(runs)}
	if len(runs) == 0 {
		m.Median, m.Min, m.Max = math.NaN(), math.NaN(), math.NaN()
		return m
	}
	s := append([]float64(nil), runs...)
	sort.Float64s(s)
	m.Min, m.Max, m.Median = s[0], s[len(s)-1], Percentile(s, 50)
	return m
}

// Percentile of sorted values, interpolated between the nearest ranks.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	pos := p / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return sorted[lo] + (sorted[hi]-sorted[lo])*(pos-float64(lo))
}

// Spread is (max-min)/median: how much the runs disagree.
func (m Metric) Spread() float64 {
	if m.Median == 0 {
		return math.Inf(1)
	}
	return (m.Max - m.Min) / math.Abs(m.Median)
}

// Get returns the metric of that name.
func (r *Results) Get(name string) (Metric, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}

// Write stores r as indented JSON.
func (r *Results) Write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Read loads a results.json, checking every metric is usable.
func Read(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	seen := map[string]bool{}
	for i, m := range r.Metrics {
		field := fmt.Sprintf("%s: metrics[%d]", path, i)
		switch {
		case m.Name == "":
			return nil, fmt.Errorf("%s.name: empty", field)
		case seen[m.Name]:
			return nil, fmt.Errorf("%s.name: %q appears twice", field, m.Name)
		case m.Better != Lower && m.Better != Higher:
			return nil, fmt.Errorf("%s.better (%s): %q, want lower or higher", field, m.Name, m.Better)
		case m.Runs < 1:
			return nil, fmt.Errorf("%s.runs (%s): %d, want at least 1", field, m.Name, m.Runs)
		case !(m.Min <= m.Median && m.Median <= m.Max):
			return nil, fmt.Errorf("%s (%s): want min <= median <= max, got %g, %g, %g", field, m.Name, m.Min, m.Median, m.Max)
		}
		seen[m.Name] = true
	}
	return &r, nil
}
