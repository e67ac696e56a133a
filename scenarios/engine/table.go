package engine

import (
	"fmt"
	"io"
	"regexp"
	"strings"
)

// cellName parses a reachability cell's probe name: [STEP/]FROM->TO/PROTO/PORT[#N].
var cellName = regexp.MustCompile(`^(?:(step-\d+|end)/)?(.+)->(.+)/([A-Za-z0-9]+)/(\d+)(?:#\d+)?$`)

// matrix is one reachability table of a run: a step's cells of one protocol and port.
type matrix struct {
	title     string
	rows, hdr []string
	cells     map[[2]string]Result
}

// WriteVerdictTables prints, as cyclonus does, every reachability matrix of the
// run with the verdicts observed ("." allowed, "X" dropped, "R" rejected, "-"
// skipped, "?" not run), a cell that differs from the expected one marked "*",
// then every such cell on its own line. It returns how many cells differ.
func (r *Report) WriteVerdictTables(w io.Writer) int {
	var diffs []string
	for _, f := range r.Files {
		var order []string
		ms := map[string]*matrix{}
		for _, res := range f.Results {
			m := cellName.FindStringSubmatch(res.Probe.Name)
			if m == nil {
				continue
			}
			step, from, to, proto, port := m[1], m[2], m[3], m[4], m[5]
			key := step + " " + proto + "/" + port
			mx, ok := ms[key]
			if !ok {
				title := f.Scenario
				if step != "" {
					title += " " + step
				}
				mx = &matrix{title: title + " " + proto + "/" + port, cells: map[[2]string]Result{}}
				ms[key] = mx
				order = append(order, key)
			}
			if !contains(mx.rows, from) {
				mx.rows = append(mx.rows, from)
			}
			if !contains(mx.hdr, to) {
				mx.hdr = append(mx.hdr, to)
			}
			mx.cells[[2]string{from, to}] = res
			if res.Status == Failed {
				diffs = append(diffs, fmt.Sprintf("DIFFERS %s / %s: expected %s, %s observed %s",
					f.Scenario, res.Probe.Name, res.Probe.Expect.Verdict, r.Mode, observedVerdict(res)))
			}
		}
		for _, key := range order {
			ms[key].write(w, r.Mode)
		}
	}
	for _, d := range diffs {
		fmt.Fprintln(w, d)
	}
	fmt.Fprintf(w, "%d reachability cells differ from the expected verdicts in %s mode\n", len(diffs), r.Mode)
	return len(diffs)
}

func (mx *matrix) write(w io.Writer, mode string) {
	// Columns in the rows' order: a matrix that ignores loopback has no
	// first row's first cell, so first appearance alone would shift them.
	var hdr []string
	for _, r := range mx.rows {
		if contains(mx.hdr, r) {
			hdr = append(hdr, r)
		}
	}
	for _, h := range mx.hdr {
		if !contains(hdr, h) {
			hdr = append(hdr, h)
		}
	}
	mx.hdr = hdr
	width := 0
	for _, s := range append(append([]string{}, mx.rows...), mx.hdr...) {
		width = max(width, len(s))
	}
	fmt.Fprintf(w, "%s (%s; * differs from the expected)\n", mx.title, mode)
	fmt.Fprintf(w, "%-*s", width+1, "")
	for _, h := range mx.hdr {
		fmt.Fprintf(w, " %-*s", width, h)
	}
	fmt.Fprintln(w)
	for _, from := range mx.rows {
		fmt.Fprintf(w, "%-*s", width+1, from)
		for _, to := range mx.hdr {
			cell := " "
			if res, ok := mx.cells[[2]string{from, to}]; ok {
				cell = mark(res)
				if res.Status == Failed {
					cell += "*"
				}
			}
			fmt.Fprintf(w, " %-*s", width, cell)
		}
		fmt.Fprintln(w)
	}
}

func mark(res Result) string {
	switch {
	case res.Status == Skipped:
		return "-"
	case res.Observed.Err != nil:
		return "?"
	}
	switch res.Observed.Verdict {
	case "allowed":
		return "."
	case "dropped":
		return "X"
	case "rejected":
		return "R"
	}
	return "?"
}

func observedVerdict(res Result) string {
	if res.Observed.Err != nil {
		return "an error (" + strings.SplitN(res.Observed.Err.Error(), "\n", 2)[0] + ")"
	}
	return res.Observed.Verdict
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
