package engine

import "testing"

func TestDiffVerdictsListsOnlyProbesThatRanInBothAndDisagree(t *testing.T) {
	res := func(name, verdict string, status Status) Result {
		return Result{Probe: Probe{Name: name}, Status: status, Observed: Observation{Verdict: verdict}}
	}
	a := &Report{Mode: "unit", Files: []FileResult{{Scenario: "s", Results: []Result{
		res("same", "allowed", Passed), res("differs", "allowed", Passed), res("skipped-in-b", "dropped", Passed), res("only-in-a", "allowed", Passed),
	}}}}
	b := &Report{Mode: "sim", Files: []FileResult{{Scenario: "s", Results: []Result{
		res("same", "allowed", Passed), res("differs", "dropped", Failed), res("skipped-in-b", "", Skipped),
	}}}}
	d := DiffVerdicts(a, b)
	if len(d) != 1 || d[0].Probe != "differs" || d[0].A != "allowed" || d[0].B != "dropped" {
		t.Fatalf("got %+v", d)
	}
}
