package engine

import (
	"strings"
	"testing"
)

// A run's reachability cells come back as their matrix, the observed verdict in
// each cell, a cell that missed its expectation starred and listed.
func TestVerdictTablesShowObservedCellsAndListThoseThatDiffer(t *testing.T) {
	cell := func(name, expect, observed string, status Status) Result {
		return Result{Probe: Probe{Name: name, Expect: Expectation{Verdict: expect}}, Status: status,
			Observed: Observation{Verdict: observed}}
	}
	rep := &Report{Mode: "cluster", Files: []FileResult{{Scenario: "deny", Results: []Result{
		cell("step-1/x/a->x/b/TCP/80", "dropped", "dropped", Passed),
		cell("step-1/x/b->x/a/TCP/80", "dropped", "allowed", Failed),
		cell("step-1/x/a->x/b/UDP/81", "allowed", "", Skipped),
		{Probe: Probe{Name: "not a cell"}, Status: Failed},
	}}}}
	var b strings.Builder
	n := rep.WriteVerdictTables(&b)
	out := b.String()
	if n != 1 {
		t.Errorf("%d cells differ, want 1:\n%s", n, out)
	}
	// row is the line of matrix title's row from.
	row := func(title, from string) string {
		lines := strings.Split(out, "\n")
		for i, l := range lines {
			if !strings.HasPrefix(l, title) {
				continue
			}
			for _, r := range lines[i+2:] {
				if strings.HasPrefix(r, from+" ") {
					return r
				}
			}
		}
		return ""
	}
	rowB, rowUDP := row("deny step-1 TCP/80", "x/b"), row("deny step-1 UDP/81", "x/a")
	if f := strings.Fields(rowB); len(f) != 2 || f[1] != ".*" {
		t.Errorf("row x/b of TCP/80 = %q, want x/b's cell to x/a allowed and starred", rowB)
	}
	if f := strings.Fields(rowUDP); len(f) != 2 || f[1] != "-" {
		t.Errorf("row x/a of UDP/81 = %q, want a skipped cell", rowUDP)
	}
	// x/a's row has no x/a cell (loopback ignored): columns still follow the rows.
	if h := strings.Fields(strings.Split(out, "\n")[1]); len(h) != 2 || h[0] != "x/a" || h[1] != "x/b" {
		t.Errorf("header %v, want x/a x/b:\n%s", h, out)
	}
	if !strings.Contains(out, "DIFFERS deny / step-1/x/b->x/a/TCP/80: expected dropped, cluster observed allowed") {
		t.Errorf("the differing cell is not listed:\n%s", out)
	}
}
