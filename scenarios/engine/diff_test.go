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

// Drop reasons are compared where both runners read them; a runner that saw
// no events is left out, not counted as agreeing.
func TestDiffReasonsComparesOnlyReasonsBothSaw(t *testing.T) {
	res := func(name, verdict, reason string, unobserved bool) Result {
		return Result{Probe: Probe{Name: name}, Status: Passed, Observed: Observation{Verdict: verdict, Reason: reason, EventsUnobserved: unobserved}}
	}
	a := &Report{Mode: "unit", Files: []FileResult{{Scenario: "s", Results: []Result{
		res("same", "dropped", "POLICY_DENIED", false), res("differs", "dropped", "POLICY_DENIED", false),
		res("unobserved-in-b", "dropped", "POLICY_DENIED", false), res("allowed", "allowed", "", false),
		res("verdict-differs", "dropped", "POLICY_DENIED", false),
	}}}}
	b := &Report{Mode: "cluster", Files: []FileResult{{Scenario: "s", Results: []Result{
		res("same", "dropped", "POLICY_DENIED", false), res("differs", "dropped", "POLICY_DENYLIST", false),
		res("unobserved-in-b", "dropped", "", true), res("allowed", "allowed", "", false),
		res("verdict-differs", "rejected", "SERVICE_NO_BACKEND", false),
	}}}}
	n, d := DiffReasons(a, b)
	if n != 2 || len(d) != 1 || d[0].Probe != "differs" || d[0].A != "dropped POLICY_DENIED" || d[0].B != "dropped POLICY_DENYLIST" {
		t.Fatalf("compared %d, diffs %+v", n, d)
	}
}
