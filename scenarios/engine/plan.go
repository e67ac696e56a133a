package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kestrelnet/kestrel/scenarios/format"
)

// Plan is a scenario expanded into the sequence the runner executes: for each
// step, the whole desired cluster, then that step's probes in order.
type Plan struct {
	Scenario string
	File     string
	Modes    []string // the scenario's modes; empty means every mode
	Steps    []Step
}

// Step is one Sync followed by probes that share the datapath state in order.
type Step struct {
	Name    string
	Cluster *Cluster
	Probes  []PlannedProbe
}

// PlannedProbe is a probe and the modes it runs in (empty: every mode).
type PlannedProbe struct {
	Probe Probe
	Modes []string
}

// Expand turns a parsed scenario into its plan. Without steps, every object is
// applied and the top-level probes run. With steps, the cluster starts with the
// pods and namespaces only; each step deletes, then applies, then sets labels,
// then runs its probes and then its reachability cells; top-level probes run last
// on the final state. Errors name the file and line.
func Expand(s *format.Scenario) (*Plan, error) {
	addClusterDNS(s)
	st, err := newState(s)
	if err != nil {
		return nil, err
	}
	// The kube-dns Service is there from the start, whatever the steps do.
	if svc, err := kubeDNSService(s); err != nil {
		return nil, err
	} else if svc != nil {
		if err := st.apply(*svc); err != nil {
			return nil, err
		}
	}
	if err := assignClusterIPs(s); err != nil {
		return nil, err
	}
	x := &expander{s: s, st: st, catalogue: slices.Clone(s.Spec.Objects), names: map[string]int{}}
	plan := &Plan{Scenario: s.Metadata.Name, File: s.File, Modes: s.Spec.Modes}
	if len(s.Spec.Steps) == 0 {
		for _, o := range s.Spec.Objects {
			if err := st.apply(o); err != nil {
				return nil, err
			}
		}
		if err := x.checkSecrets(s.Spec.Objects); err != nil {
			return nil, err
		}
		step, err := x.step("", s.Spec.Probes, s.Spec.Reachability)
		if err != nil {
			return nil, err
		}
		plan.Steps = append(plan.Steps, step)
		return plan, nil
	}
	for i, fs := range s.Spec.Steps {
		if err := x.mutate(fs, i); err != nil {
			return nil, err
		}
		step, err := x.step(fmt.Sprintf("step-%d", i+1), fs.Probes, fs.Reachability)
		if err != nil {
			return nil, err
		}
		plan.Steps = append(plan.Steps, step)
	}
	if len(s.Spec.Probes)+len(s.Spec.Reachability) > 0 {
		step, err := x.step("end", s.Spec.Probes, s.Spec.Reachability)
		if err != nil {
			return nil, err
		}
		plan.Steps = append(plan.Steps, step)
	}
	return plan, nil
}

type expander struct {
	s         *format.Scenario
	st        *state
	catalogue []format.Object // every object known so far: declared, or inline in a step
	names     map[string]int  // probe names used so far, to keep them unique
}

func (x *expander) errorf(line int, format string, args ...any) error {
	return &formatError{File: x.s.File, Line: line, Msg: fmt.Sprintf(format, args...)}
}

type formatError = format.Error

// mutate applies a step's changes: delete, apply, setLabels.
func (x *expander) mutate(fs format.Step, i int) error {
	for _, name := range fs.Delete {
		o, err := x.lookup(name, x.st.applied)
		if err != nil {
			return x.errorf(fs.Line, "spec.steps[%d].delete: %v", i, err)
		}
		if err := x.st.remove(o); err != nil {
			return x.errorf(fs.Line, "spec.steps[%d].delete: %v", i, err)
		}
	}
	var applied []format.Object
	for _, ref := range fs.Apply {
		if ref.Inline != nil {
			if err := x.st.apply(*ref.Inline); err != nil {
				return err
			}
			x.catalogue = append(x.catalogue, *ref.Inline)
			applied = append(applied, *ref.Inline)
			continue
		}
		o, err := x.lookup(ref.Name, x.catalogue)
		if err != nil {
			return x.errorf(ref.Line, "spec.steps[%d].apply: %v", i, err)
		}
		if err := x.st.apply(o); err != nil {
			return err
		}
		applied = append(applied, o)
	}
	if err := x.checkSecrets(applied); err != nil {
		return err
	}
	for j, sl := range fs.SetLabels {
		if sl.Pod != "" {
			p := x.st.pod(sl.Pod)
			if p == nil {
				return x.errorf(sl.Line, "spec.steps[%d].setLabels[%d]: no pod %q", i, j, sl.Pod)
			}
			p.Labels = cloneLabels(sl.Labels)
			continue
		}
		if _, ok := x.st.nsLabels[sl.Namespace]; !ok {
			return x.errorf(sl.Line, "spec.steps[%d].setLabels[%d]: no namespace %q", i, j, sl.Namespace)
		}
		x.st.setNamespaceLabels(sl.Namespace, sl.Labels)
	}
	return nil
}

// lookup finds one object by "name", "Kind/name" or "Kind/namespace/name"; the
// last object with that identity wins (a later inline apply replaces it).
func (x *expander) lookup(ref string, in []format.Object) (format.Object, error) {
	parts := strings.Split(ref, "/")
	match := func(o format.Object) bool {
		switch len(parts) {
		case 1:
			return o.Name == parts[0]
		case 2:
			return strings.EqualFold(o.Kind, parts[0]) && o.Name == parts[1]
		case 3:
			return strings.EqualFold(o.Kind, parts[0]) && strings.SplitN(objectKey(o), "/", 2)[0] == parts[1] && o.Name == parts[2]
		}
		return false
	}
	var found []format.Object
	for _, o := range in {
		if !match(o) {
			continue
		}
		found = slices.DeleteFunc(found, func(f format.Object) bool { return sameObject(f, o) })
		found = append(found, o)
	}
	switch len(found) {
	case 0:
		return format.Object{}, fmt.Errorf("no object %q", ref)
	case 1:
		return found[0], nil
	}
	var names []string
	for _, o := range found {
		names = append(names, o.Kind+"/"+o.Namespace+"/"+o.Name)
	}
	return format.Object{}, fmt.Errorf("%q is ambiguous (%s): write Kind/name or Kind/namespace/name", ref, strings.Join(names, ", "))
}

// step snapshots the cluster and resolves the probes against it.
func (x *expander) step(name string, probes []format.Probe, rs format.Reachabilities) (Step, error) {
	step := Step{Name: name, Cluster: x.st.cluster()}
	for _, fp := range probes {
		ps, err := x.probes(fp)
		if err != nil {
			return Step{}, err
		}
		for _, p := range ps {
			step.Probes = append(step.Probes, x.named(name, p, fp.Modes))
		}
	}
	for _, r := range rs {
		ps, err := x.reachability(r)
		if err != nil {
			return Step{}, err
		}
		for _, p := range ps {
			step.Probes = append(step.Probes, x.named(name, p, r.Modes))
		}
	}
	return step, nil
}

// named prefixes the step name and makes the probe's name unique in its scenario.
func (x *expander) named(step string, p Probe, modes []string) PlannedProbe {
	if step != "" {
		p.Name = step + "/" + p.Name
	}
	x.names[p.Name]++
	if n := x.names[p.Name]; n > 1 {
		p.Name = fmt.Sprintf("%s#%d", p.Name, n)
	}
	p.Scenario = x.s.Metadata.Name
	return PlannedProbe{Probe: p, Modes: narrowModes(x.s.Spec.Modes, modes)}
}

// narrowModes is the probe's modes within the scenario's (empty: every mode).
func narrowModes(scenario, probe []string) []string {
	if len(probe) == 0 {
		return scenario
	}
	if len(scenario) == 0 {
		return probe
	}
	var out []string
	for _, m := range probe {
		if slices.Contains(scenario, m) {
			out = append(out, m)
		}
	}
	if out == nil {
		out = []string{"none"}
	}
	return out
}

func cloneLabels(l map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range l {
		out[k] = v
	}
	return out
}
