package engine

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kestrelnet/kestrel/scenarios/format"
)

// fakeRunner decides verdicts with a function and records what it was given;
// it tests the engine, not a datapath.
type fakeRunner struct {
	mode    string
	verdict func(c *Cluster, p Probe) Observation
	syncErr error
	syncs   []*Cluster
	probes  []Probe
}

func (r *fakeRunner) Mode() string { return r.mode }
func (r *fakeRunner) Begin(context.Context, string) (Session, error) {
	return &fakeSession{r: r}, nil
}

type fakeSession struct {
	r   *fakeRunner
	cur *Cluster
}

func (s *fakeSession) Sync(_ context.Context, c *Cluster) error {
	if s.r.syncErr != nil {
		return s.r.syncErr
	}
	s.r.syncs = append(s.r.syncs, c)
	s.cur = c
	return nil
}

func (s *fakeSession) Probe(_ context.Context, p Probe) Observation {
	s.r.probes = append(s.r.probes, p)
	return s.r.verdict(s.cur, p)
}

func (s *fakeSession) Close() error { return nil }

// denyIntoX drops everything whose destination pod is in namespace x while a
// manifest is applied: a stand-in for a default-deny policy.
func denyIntoX(c *Cluster, p Probe) Observation {
	if len(c.Manifests) > 0 && p.To.Pod != nil && p.To.Pod.Namespace == "x" {
		return Observation{Verdict: "dropped", Reason: "POLICY_DENIED", Evidence: "fake deny"}
	}
	return Observation{Verdict: "allowed"}
}

const twoNamespaces = `apiVersion: kestrel.dev/v1alpha1
kind: Scenario
metadata: {name: demo}
spec:
  pods:
    - {name: x/a, labels: {pod: a}, ports: [{name: http, port: 80}]}
    - {name: x/b, labels: {pod: b}, ports: [80/TCP]}
    - {name: y/a, labels: {pod: a}, ports: [80/TCP]}
  namespaceLabels: {x: {ns: x}}
  objects:
    - apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      metadata: {name: deny, namespace: x}
      spec: {podSelector: {}, policyTypes: [Ingress]}
  steps:
    - reachability:
        port: 80
        ignoreLoopback: true
        expect: |
          -   x/a x/b y/a
          x/a .   .   .
          x/b .   .   .
          y/a .   .   .
    - apply: [deny]
      setLabels: [{namespace: x, labels: {team: blue}}, {pod: y/a, labels: {pod: z}}]
      probes:
        - {from: y/a, to: x/a, port: http, expect: {verdict: dropped, reason: POLICY_DENIED}}
        - {name: unit-only, modes: [unit], from: y/a, to: x/b, port: 80, expect: {verdict: dropped}}
    - delete: [NetworkPolicy/deny]
      probes:
        - {from: y/a, to: x/a, port: 80, expect: {verdict: allowed}}
`

func writeScenario(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func expand(t *testing.T, text string) *Plan {
	t.Helper()
	s, err := format.Parse("s.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Expand(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStepsChangeTheClusterInOrder(t *testing.T) {
	plan := expand(t, twoNamespaces)
	if len(plan.Steps) != 3 {
		t.Fatalf("%d steps", len(plan.Steps))
	}
	first, second, third := plan.Steps[0].Cluster, plan.Steps[1].Cluster, plan.Steps[2].Cluster
	if len(first.Manifests) != 0 || len(second.Manifests) != 1 || len(third.Manifests) != 0 {
		t.Errorf("manifests per step: %d %d %d, want 0 1 0", len(first.Manifests), len(second.Manifests), len(third.Manifests))
	}
	if got := second.Manifests[0].Source; got != "s.yaml:11" {
		t.Errorf("manifest source %q", got)
	}
	x := second.Namespaces[0]
	if x.Name != "x" || x.Labels["team"] != "blue" || x.Labels["ns"] != "" || x.Labels[nsNameLabel] != "x" {
		t.Errorf("namespace x after setLabels: %v", x.Labels)
	}
	if first.Namespaces[0].Labels["ns"] != "x" {
		t.Errorf("namespace x before setLabels: %v", first.Namespaces[0].Labels)
	}
	if second.Pods[2].Labels["pod"] != "z" || first.Pods[2].Labels["pod"] != "a" {
		t.Error("setLabels on a pod leaked into an earlier step or did not apply")
	}
}

func TestPodsGetDeterministicAddressesAndNodes(t *testing.T) {
	plan := expand(t, `apiVersion: kestrel.dev/v1alpha1
kind: Scenario
metadata: {name: ips}
spec:
  nodes: [n1, n2]
  ipFamilies: [IPv4, IPv6]
  pods:
    - {name: x/a}
    - {name: x/b}
    - {name: x/c}
    - {name: x/d, node: n2, ip: 10.244.1.10}
    - {name: x/e, node: n2}
`)
	want := map[string]string{
		"a": "n1 10.244.0.10 fd00:10:244::a", "b": "n2 10.244.1.11 fd00:10:244:1::a", "c": "n1 10.244.0.11 fd00:10:244::b",
		"d": "n2 10.244.1.10 fd00:10:244:1::b", "e": "n2 10.244.1.12 fd00:10:244:1::c",
	}
	for _, p := range plan.Steps[0].Cluster.Pods {
		got := p.Spec.NodeName + " " + p.Status.PodIPs[0].IP + " " + p.Status.PodIPs[1].IP
		if got != want[p.Name] {
			t.Errorf("pod %s: %s, want %s", p.Name, got, want[p.Name])
		}
	}
}

func TestReachabilityCellsBecomeConnectProbes(t *testing.T) {
	plan := expand(t, twoNamespaces)
	probes := plan.Steps[0].Probes
	if len(probes) != 6 {
		t.Fatalf("%d probes, want 6 (3x3 minus loopback)", len(probes))
	}
	p := probes[0].Probe
	if p.Name != "step-1/x/a->x/b/TCP/80" || p.Exchange != "connect" || p.Port != 80 || p.From.IP.String() != "10.244.0.10" || p.To.IP.String() != "10.244.0.11" {
		t.Errorf("first cell %+v", p)
	}
	named := plan.Steps[1].Probes[0].Probe
	if named.Port != 80 || named.Expect.Reason != "POLICY_DENIED" {
		t.Errorf("named port probe %+v", named)
	}
}

func TestRunReportsFailuresSkipsAndTheSummary(t *testing.T) {
	path := writeScenario(t, twoNamespaces)
	bad := writeScenario(t, "apiVersion: kestrel.dev/v1alpha1\nkind: Scenario\nmetadata: {name: b}\nspec: {pods: [{name: x/a, nope: 1}]}\n")
	files, err := Load(path, bad)
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRunner{mode: "sim", verdict: func(c *Cluster, p Probe) Observation {
		if p.Name == "step-3/y/a->x/a/TCP/80" {
			return Observation{Verdict: "dropped", Reason: "POLICY_DENIED", Evidence: "stale policy"}
		}
		return denyIntoX(c, p)
	}}
	rep := Run(context.Background(), r, files, Options{})
	var out bytes.Buffer
	rep.WriteText(&out, false)
	text := out.String()
	for _, want := range []string{
		"FAIL demo / step-3/y/a->x/a/TCP/80",
		"expected: allowed",
		"observed: dropped POLICY_DENIED",
		"evidence: stale policy",
		`unknown field "nope"`,
		"7 passed, 2 failed, 1 skipped\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	if len(r.syncs) != 3 {
		t.Errorf("%d syncs, want one per step", len(r.syncs))
	}
	var junit bytes.Buffer
	if err := rep.WriteJUnit(&junit); err != nil {
		t.Fatal(err)
	}
	var parsed junitSuites
	if err := xml.Unmarshal(junit.Bytes(), &parsed); err != nil {
		t.Fatal(err)
	}
	if len(parsed.Suites) != 2 || parsed.Tests != 10 || parsed.Failures != 2 || parsed.Skipped != 1 {
		t.Errorf("junit totals %+v", parsed)
	}
}

func TestRunHonorsTheFilter(t *testing.T) {
	files, err := Load(writeScenario(t, twoNamespaces))
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRunner{mode: "unit", verdict: denyIntoX}
	rep := Run(context.Background(), r, files, Options{Filter: regexp.MustCompile(`^demo/step-2/`)})
	if got := rep.Summary(); got != "2 passed, 0 failed" {
		t.Errorf("summary %q", got)
	}
}

func TestASyncErrorFailsEveryProbeOfTheStep(t *testing.T) {
	files, err := Load(writeScenario(t, twoNamespaces))
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRunner{mode: "unit", verdict: denyIntoX, syncErr: errors.New("policy rejected")}
	rep := Run(context.Background(), r, files, Options{})
	if got := rep.Summary(); got != "0 passed, 9 failed" {
		t.Errorf("summary %q", got)
	}
	if p := rep.Files[0].Results[0].Problems; len(p) != 1 || !strings.Contains(p[0], "policy rejected") {
		t.Errorf("problems %v", p)
	}
}

func TestExpansionErrorsNameTheLine(t *testing.T) {
	tests := []struct{ name, spec, want string }{
		{"a probe to an unknown pod", "  probes: [{from: x/a, to: x/zz, port: 80, expect: {verdict: allowed}}]\n", `s.yaml:6: no pod "x/zz"`},
		{"an unknown port name", "  probes: [{from: x/a, to: x/a, port: web, expect: {verdict: allowed}}]\n", `no TCP container port named "web"`},
		{"applying an unknown object", "  steps: [{apply: [nothing]}]\n", `s.yaml:6: spec.steps[0].apply: no object "nothing"`},
		{"a matrix naming an unknown pod", "  reachability: {port: 80, expect: \"- x/a x/q\\nx/a . .\"}\n", `no pod "x/q"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := format.Parse("s.yaml", []byte("apiVersion: kestrel.dev/v1alpha1\nkind: Scenario\nmetadata: {name: e}\nspec:\n  pods: [{name: x/a}]\n"+tt.spec))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Expand(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}
