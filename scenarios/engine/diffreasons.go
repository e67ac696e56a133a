package engine

import (
	"fmt"
	"io"
)

// DiffReasons compares the drop reasons of the probes that ran in both
// reports with the same verdict and whose runners both read the datapath's
// events for them (a dropped or rejected probe with a reason on each side):
// compared counts them, diffs are those whose reasons differ (A and B as
// "verdict REASON"). A runner that saw no events (EventsUnobserved, as
// cluster mode without Kestrel's agents) compares verdicts alone
// (DiffVerdicts).
func DiffReasons(a, b *Report) (compared int, diffs []VerdictDiff) {
	ranInBoth(a, b, func(scenario string, ra, rb Result) {
		oa, ob := ra.Observed, rb.Observed
		if oa.Verdict != ob.Verdict || !hasReason(oa) || !hasReason(ob) {
			return
		}
		compared++
		if oa.Reason != ob.Reason {
			diffs = append(diffs, VerdictDiff{Scenario: scenario, Probe: rb.Probe.Name,
				A: oa.Verdict + " " + oa.Reason, B: ob.Verdict + " " + ob.Reason})
		}
	})
	sortDiffs(diffs)
	return compared, diffs
}

func hasReason(o Observation) bool {
	return !o.EventsUnobserved && o.Reason != "" && (o.Verdict == "dropped" || o.Verdict == "rejected")
}

// WriteReasonDiff prints the drop reasons that differ between a run in mode
// a and one in mode b, ending with a count line.
func WriteReasonDiff(w io.Writer, a, b *Report, compared int, diffs []VerdictDiff) {
	for _, d := range diffs {
		fmt.Fprintf(w, "REASON DIFFERS %s / %s: %s=%s %s=%s\n", d.Scenario, d.Probe, a.Mode, d.A, b.Mode, d.B)
	}
	fmt.Fprintf(w, "%d drop reasons compared between %s and %s, %d differ\n", compared, a.Mode, b.Mode, len(diffs))
}
