package engine

import (
	"fmt"
	"io"
	"strings"
)

// Counts are the totals of a report; a file that failed to load counts as one failure.
func (r *Report) Counts() (passed, failed, skipped int) {
	for _, f := range r.Files {
		if f.Err != nil {
			failed++
		}
		for _, res := range f.Results {
			switch res.Status {
			case Passed:
				passed++
			case Failed:
				failed++
			case Skipped:
				skipped++
			}
		}
	}
	return passed, failed, skipped
}

// OK reports whether nothing failed.
func (r *Report) OK() bool {
	_, failed, _ := r.Counts()
	return failed == 0
}

// WriteText prints every failure with its evidence (and, when verbose, every
// passing and skipped probe), then the summary line.
func (r *Report) WriteText(w io.Writer, verbose bool) {
	for _, f := range r.Files {
		if f.Err != nil {
			// A file's errors come one a line; each is indented under it.
			fmt.Fprintf(w, "FAIL %s\n    %s\n", f.Path, strings.ReplaceAll(f.Err.Error(), "\n", "\n    "))
		}
		for _, res := range f.Results {
			switch {
			case res.Status == Failed:
				writeFailure(w, f, res)
			case verbose:
				fmt.Fprintf(w, "%s %s / %s", strings.ToUpper(string(res.Status[:4])), f.Scenario, res.Probe.Name)
				if res.Status == Skipped && len(res.Problems) > 0 {
					fmt.Fprintf(w, ": %s", res.Problems[0])
				}
				fmt.Fprintln(w)
			}
		}
	}
	if n := r.uncheckedEvents(); n > 0 {
		fmt.Fprintf(w, "note: %d probes passed on their verdict alone: the %s runner could not read datapath events for them, so their drop reasons and flows were not checked\n", n, r.Mode)
	}
	if reasons := r.skipReasons(); len(reasons) > 0 {
		for _, sr := range reasons {
			fmt.Fprintf(w, "note: %d skipped: %s\n", sr.n, sr.reason)
		}
	}
	fmt.Fprintln(w, r.Summary())
}

func (r *Report) uncheckedEvents() int {
	n := 0
	for _, f := range r.Files {
		for _, res := range f.Results {
			e := res.Probe.Expect
			if res.Status == Passed && res.Observed.EventsUnobserved && (e.Flow != nil || e.Reason != "") {
				n++
			}
		}
	}
	return n
}

type skipReason struct {
	reason string
	n      int
}

// skipReasons counts skipped probes by the reason the runner gave.
func (r *Report) skipReasons() []skipReason {
	var out []skipReason
	index := map[string]int{}
	for _, f := range r.Files {
		for _, res := range f.Results {
			if res.Status != Skipped || len(res.Problems) == 0 {
				continue
			}
			i, ok := index[res.Problems[0]]
			if !ok {
				i = len(out)
				index[res.Problems[0]] = i
				out = append(out, skipReason{reason: res.Problems[0]})
			}
			out[i].n++
		}
	}
	return out
}

// Summary is the final line: "N passed, M failed" and ", K skipped" when K > 0.
func (r *Report) Summary() string {
	p, f, s := r.Counts()
	line := fmt.Sprintf("%d passed, %d failed", p, f)
	if s > 0 {
		line += fmt.Sprintf(", %d skipped", s)
	}
	return line
}

func writeFailure(w io.Writer, f FileResult, res Result) {
	fmt.Fprintf(w, "FAIL %s / %s  (%s)\n", f.Scenario, res.Probe.Name, f.Path)
	fmt.Fprintf(w, "    probe:    %s\n", describeProbe(res.Probe))
	fmt.Fprintf(w, "    expected: %s\n", describeExpectation(res.Probe.Expect))
	fmt.Fprintf(w, "    observed: %s\n", describeObservation(res.Observed))
	for _, p := range res.Problems {
		fmt.Fprintf(w, "    - %s\n", p)
	}
	for _, fl := range res.Observed.Flows {
		fmt.Fprintf(w, "    flow: %s %s reason=%s match=%s policies=%v ids=%d->%d\n",
			fl.Direction, fl.Verdict, orNone(fl.Reason), orNone(fl.MatchType), fl.Policies, fl.SrcID, fl.DstID)
	}
	if res.Observed.Evidence != "" {
		fmt.Fprintf(w, "    evidence: %s\n", strings.ReplaceAll(res.Observed.Evidence, "\n", "\n              "))
	}
}

func describeProbe(p Probe) string {
	s := fmt.Sprintf("%s -> %s %s", describePeer(p.From), describePeer(p.To), p.Protocol)
	if p.Port != 0 {
		s += fmt.Sprintf("/%d", p.Port)
	}
	s += " " + p.Exchange
	if len(p.Flags) > 0 {
		s += " " + strings.Join(p.Flags, "|")
	}
	return s
}

func describePeer(p Peer) string {
	switch {
	case p.Pod != nil:
		return fmt.Sprintf("%s/%s(%s)", p.Pod.Namespace, p.Pod.Name, p.IP)
	case p.Node != "":
		return fmt.Sprintf("node %s(%s)", p.Node, p.IP)
	case p.Service != "":
		return fmt.Sprintf("service %s(%s)", p.Service, p.IP)
	case p.FQDN != "":
		return fmt.Sprintf("%s(%s)", p.FQDN, p.IP)
	case p.Via != "":
		return fmt.Sprintf("%s via %s", p.IP, p.Via)
	}
	return p.IP.String()
}

func describeExpectation(e Expectation) string {
	s := e.Verdict
	if e.Reason != "" {
		s += " " + e.Reason
	}
	if len(e.Backends) > 0 {
		s += " backend=" + strings.Join(e.Backends, "|")
	}
	if e.SourceIP != nil {
		s += " sourceIP=" + describePeer(*e.SourceIP)
	}
	if e.Status != 0 {
		s += fmt.Sprintf(" status=%d", e.Status)
	}
	if e.Flow != nil {
		s += " flow{" + describeFlow(*e.Flow) + "}"
	}
	return s
}

func describeObservation(o Observation) string {
	if o.Err != nil {
		return "error: " + o.Err.Error()
	}
	s := orNone(o.Verdict)
	if o.Reason != "" {
		s += " " + o.Reason
	}
	if o.Backend != "" {
		s += " backend=" + o.Backend
	}
	if o.SourceIP.IsValid() {
		s += " sourceIP=" + o.SourceIP.String()
	}
	if o.Status != 0 {
		s += fmt.Sprintf(" status=%d", o.Status)
	}
	return s
}
