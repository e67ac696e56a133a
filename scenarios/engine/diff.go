package engine

import (
	"fmt"
	"io"
	"sort"
)

// VerdictDiff is a probe whose observed verdict differs between two runs of
// the same scenarios (two modes, or two datapath builds).
type VerdictDiff struct {
	Scenario, Probe string
	A, B            string // verdicts, in the order the reports were given
}

// DiffVerdicts lists every probe that ran in both reports with different
// verdicts. Probes skipped or not run in either report are left out.
func DiffVerdicts(a, b *Report) []VerdictDiff {
	seen := map[[2]string]string{}
	for _, f := range a.Files {
		for _, res := range f.Results {
			if ran(res) {
				seen[[2]string{f.Scenario, res.Probe.Name}] = verdictOf(res)
			}
		}
	}
	var out []VerdictDiff
	for _, f := range b.Files {
		for _, res := range f.Results {
			va, ok := seen[[2]string{f.Scenario, res.Probe.Name}]
			if !ok || !ran(res) {
				continue
			}
			if vb := verdictOf(res); vb != va {
				out = append(out, VerdictDiff{Scenario: f.Scenario, Probe: res.Probe.Name, A: va, B: vb})
			}
		}
	}
	sortDiffs(out)
	return out
}

func sortDiffs(out []VerdictDiff) {
	sort.Slice(out, func(i, j int) bool {
		if out[i].Scenario != out[j].Scenario {
			return out[i].Scenario < out[j].Scenario
		}
		return out[i].Probe < out[j].Probe
	})
}

func ran(r Result) bool { return r.Status != Skipped && r.Observed.Err == nil }

func verdictOf(r Result) string { return r.Observed.Verdict }

// WriteDiff prints the differences between a run in mode a and one in mode b,
// ending with a count line.
func WriteDiff(w io.Writer, a, b *Report, diffs []VerdictDiff) {
	for _, d := range diffs {
		fmt.Fprintf(w, "VERDICT DIFFERS %s / %s: %s=%s %s=%s\n", d.Scenario, d.Probe, a.Mode, d.A, b.Mode, d.B)
	}
	fmt.Fprintf(w, "%d probes differ between %s and %s\n", len(diffs), a.Mode, b.Mode)
}
