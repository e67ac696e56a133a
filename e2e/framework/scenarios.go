package framework

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kestrelnet/kestrel/scenarios/engine"
	"github.com/kestrelnet/kestrel/scenarios/format"
)

// ScenarioFiles lists the scenario files (*.yaml) in a directory of the checkout.
func ScenarioFiles(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(RepoPath(dir), "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no scenario files in %s", dir)
	}
	slices.Sort(files)
	return files, nil
}

// RunScenario runs one scenario file on r and returns its report.
func RunScenario(ctx context.Context, r engine.Runner, path string) (*engine.Report, error) {
	files, err := engine.Load(path)
	if err != nil {
		return nil, err
	}
	return engine.Run(ctx, r, files, engine.Options{}), nil
}

// ReportText is a report as `kestrel scenario run` prints it.
func ReportText(rep *engine.Report) string {
	var b strings.Builder
	rep.WriteText(&b, false)
	return b.String()
}

// Plan reads and expands one scenario file, for specs that drive its steps
// themselves (between which they crash and restart things).
func Plan(path string) (*engine.Plan, error) {
	s, err := format.ParseFile(path)
	if err != nil {
		return nil, err
	}
	return engine.Expand(s)
}

// StepProbe finds a probe of a plan's step by the name the scenario gives it.
func StepProbe(step engine.Step, name string) (engine.Probe, error) {
	for _, p := range step.Probes {
		if p.Probe.Name == name || p.Probe.Name == step.Name+"/"+name {
			return p.Probe, nil
		}
	}
	return engine.Probe{}, fmt.Errorf("step %s has no probe %q", step.Name, name)
}

// CheckProbe runs a planned probe in sess and returns what differs from its
// expectation (nothing when it passed). Drop reasons are only checked where
// the runner observes datapath events.
func CheckProbe(ctx context.Context, sess engine.Session, p engine.Probe) []string {
	o := sess.Probe(ctx, p)
	if o.Err != nil {
		return []string{o.Err.Error()}
	}
	if o.Skipped != "" {
		return []string{"skipped: " + o.Skipped}
	}
	problems := engine.Check(p.Expect, o)
	if len(problems) > 0 && o.Evidence != "" {
		problems = append(problems, "evidence: "+o.Evidence)
	}
	return problems
}
