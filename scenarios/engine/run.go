package engine

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// Options select what Run executes.
type Options struct {
	// Filter, when set, keeps only probes whose "scenario/probe" name matches.
	// Probes filtered out are not run at all, so in a step whose probes share
	// conntrack state, filter whole scenarios rather than single probes.
	Filter *regexp.Regexp
}

// Status is a probe's outcome.
type Status string

// The outcomes of a probe.
const (
	Passed  Status = "passed"
	Failed  Status = "failed"
	Skipped Status = "skipped"
)

// Result is one probe's outcome.
type Result struct {
	Probe    Probe
	Status   Status
	Observed Observation
	Problems []string // what differed from the expectation, or why it could not run
}

// FileResult is the outcome of one scenario file.
type FileResult struct {
	Path     string
	Scenario string
	Err      error // the file did not parse, or the scenario could not start
	Results  []Result
}

// Report is the outcome of a run.
type Report struct {
	Mode  string
	Files []FileResult
}

// Run executes every loaded file against r, in order.
func Run(ctx context.Context, r Runner, files []File, opt Options) *Report {
	rep := &Report{Mode: r.Mode()}
	for _, f := range files {
		rep.Files = append(rep.Files, runFile(ctx, r, f, opt))
	}
	return rep
}

func runFile(ctx context.Context, r Runner, f File, opt Options) FileResult {
	fr := FileResult{Path: f.Path, Err: f.Err}
	if f.Plan == nil {
		return fr
	}
	fr.Scenario = f.Plan.Scenario
	type work struct {
		step   *Step
		probes []Probe
		skip   []bool // the probe's modes exclude this runner
		runs   bool   // at least one probe runs
	}
	var steps []work
	for i := range f.Plan.Steps {
		w := work{step: &f.Plan.Steps[i]}
		for _, pp := range w.step.Probes {
			if opt.Filter != nil && !opt.Filter.MatchString(pp.Probe.Scenario+"/"+pp.Probe.Name) {
				continue
			}
			skip := len(pp.Modes) > 0 && !slices.Contains(pp.Modes, r.Mode())
			w.probes = append(w.probes, pp.Probe)
			w.skip = append(w.skip, skip)
			w.runs = w.runs || !skip
		}
		steps = append(steps, w)
	}
	if !slices.ContainsFunc(steps, func(w work) bool { return w.runs }) {
		for _, w := range steps {
			for _, p := range w.probes {
				fr.Results = append(fr.Results, Result{Probe: p, Status: Skipped})
			}
		}
		return fr
	}
	sess, err := r.Begin(ctx, f.Plan.Scenario)
	if err != nil {
		fr.Err = fmt.Errorf("%s: %s runner could not start the scenario: %w", f.Path, r.Mode(), err)
		return fr
	}
	defer func() {
		if err := sess.Close(); err != nil && fr.Err == nil {
			fr.Err = fmt.Errorf("%s: closing the %s session: %w", f.Path, r.Mode(), err)
		}
	}()
	for _, w := range steps {
		// Every step is synced, even one with no probes left, so that later
		// steps see the same history of states.
		if err := sess.Sync(ctx, w.step.Cluster); err != nil {
			for i, p := range w.probes {
				if w.skip[i] {
					fr.Results = append(fr.Results, Result{Probe: p, Status: Skipped})
					continue
				}
				fr.Results = append(fr.Results, Result{Probe: p, Status: Failed,
					Observed: Observation{Err: err},
					Problems: []string{fmt.Sprintf("sync of %s failed: %v", stepLabel(w.step.Name), err)}})
			}
			continue
		}
		obs := observe(ctx, sess, w.probes, w.skip)
		for i, p := range w.probes {
			if w.skip[i] {
				fr.Results = append(fr.Results, Result{Probe: p, Status: Skipped})
				continue
			}
			fr.Results = append(fr.Results, judge(p, obs[i]))
		}
	}
	return fr
}

// observe runs a step's probes in order; runs of independent probes go to a
// BatchSession together.
func observe(ctx context.Context, sess Session, probes []Probe, skip []bool) []Observation {
	out := make([]Observation, len(probes))
	batcher, canBatch := sess.(BatchSession)
	for i := 0; i < len(probes); {
		if skip[i] {
			i++
			continue
		}
		if !canBatch || !probes[i].Independent {
			out[i] = sess.Probe(ctx, probes[i])
			i++
			continue
		}
		var idx []int
		var batch []Probe
		for ; i < len(probes) && (skip[i] || probes[i].Independent); i++ {
			if !skip[i] {
				idx = append(idx, i)
				batch = append(batch, probes[i])
			}
		}
		for j, o := range batcher.ProbeBatch(ctx, batch) {
			out[idx[j]] = o
		}
	}
	return out
}

func judge(p Probe, obs Observation) Result {
	if obs.Skipped != "" {
		return Result{Probe: p, Status: Skipped, Observed: obs, Problems: []string{obs.Skipped}}
	}
	res := Result{Probe: p, Observed: obs, Problems: Check(p.Expect, obs)}
	res.Status = Passed
	if len(res.Problems) > 0 {
		res.Status = Failed
	}
	return res
}

func stepLabel(name string) string {
	if name == "" {
		return "the scenario's state"
	}
	return name
}

// Check compares an observation with an expectation and lists the differences.
func Check(e Expectation, o Observation) []string {
	if o.Err != nil {
		return []string{fmt.Sprintf("probe could not run: %v", o.Err)}
	}
	var problems []string
	if o.Verdict != e.Verdict {
		problems = append(problems, fmt.Sprintf("verdict: expected %s, observed %s", e.Verdict, o.Verdict))
	} else if e.Reason != "" && !o.EventsUnobserved && o.Reason != e.Reason {
		problems = append(problems, fmt.Sprintf("drop reason: expected %s, observed %s", e.Reason, orNone(o.Reason)))
	}
	// A flow that went through names its backend; one dropped on the way
	// names it only where the runner can see it (unit mode), so a backend
	// is required only of allowed flows.
	if len(e.Backends) > 0 && (o.Backend != "" || o.Verdict == "allowed") && !slices.Contains(e.Backends, o.Backend) {
		problems = append(problems, fmt.Sprintf("backend: expected %s, observed %s", strings.Join(e.Backends, " or "), orNone(o.Backend)))
	}
	// The server reports the client address it saw on an answered probe.
	if e.SourceIP != nil && o.Verdict == "allowed" && o.SourceIP != e.SourceIP.IP {
		problems = append(problems, fmt.Sprintf("source IP: expected %s, observed %s", describePeer(*e.SourceIP), orNone(addrString(o.SourceIP))))
	}
	if e.Status != 0 && o.Verdict == "allowed" && o.Status != e.Status {
		problems = append(problems, fmt.Sprintf("http status: expected %d, observed %d", e.Status, o.Status))
	}
	problems = append(problems, answerProblems(e, o)...)
	if f := e.Flow; f != nil && !o.EventsUnobserved && !slices.ContainsFunc(o.Flows, func(fl Flow) bool { return flowMatches(*f, fl) }) {
		problems = append(problems, fmt.Sprintf("flow: expected one with %s, observed none among %d", describeFlow(*f), len(o.Flows)))
	}
	return problems
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func flowMatches(e FlowExpectation, f Flow) bool {
	if e.Direction != "" && e.Direction != f.Direction {
		return false
	}
	if e.MatchType != "" && e.MatchType != f.MatchType {
		return false
	}
	if e.Policy == "" {
		return true
	}
	return slices.ContainsFunc(f.Policies, func(origin string) bool { return policyMatches(e.Policy, origin) })
}

// policyMatches: the expected policy name matches the end of the origin
// ("x/deny-ingress" or "NetworkPolicy/x/deny-ingress" both match "deny-ingress").
func policyMatches(name, origin string) bool {
	if origin == name {
		return true
	}
	return len(origin) > len(name) && origin[len(origin)-len(name)-1] == '/' && origin[len(origin)-len(name):] == name
}

func describeFlow(f FlowExpectation) string {
	s := ""
	add := func(k, v string) {
		if v != "" {
			if s != "" {
				s += ", "
			}
			s += k + "=" + v
		}
	}
	add("policy", f.Policy)
	add("direction", f.Direction)
	add("matchType", f.MatchType)
	if s == "" {
		return "any content"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
