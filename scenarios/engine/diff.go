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
	var out []VerdictDiff
	ranInBoth(a, b, func(scenario string, ra, rb Result) {
		if va, vb := verdictOf(ra), verdictOf(rb); va != vb {
			out = append(out, VerdictDiff{Scenario: scenario, Probe: rb.Probe.Name, A: va, B: vb})
		}
	})
	sortDiffs(out)
	return out
}

// ranInBoth calls f with each probe's results in a and in b, for the probes
// that ran in both reports.
func ranInBoth(a, b *Report, f func(scenario string, ra, rb Result)) {
	seen := map[[2]string]Result{}
	for _, file := range a.Files {
		for _, res := range file.Results {
			if ran(res) {
				seen[[2]string{file.Scenario, res.Probe.Name}] = res
			}
		}
	}
	for _, file := range b.Files {
		for _, res := range file.Results {
			if ra, ok := seen[[2]string{file.Scenario, res.Probe.Name}]; ok && ran(res) {
				f(file.Scenario, ra, res)
			}
		}
	}
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
