package engine

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// batchSession answers matrix cells in batches and explicit probes one by one.
type batchSession struct {
	fakeSession
	batches [][]Probe
	single  []Probe
}

func (s *batchSession) Probe(ctx context.Context, p Probe) Observation {
	s.single = append(s.single, p)
	return s.fakeSession.Probe(ctx, p)
}

func (s *batchSession) ProbeBatch(ctx context.Context, ps []Probe) []Observation {
	s.batches = append(s.batches, ps)
	out := make([]Observation, len(ps))
	for i, p := range ps {
		out[i] = s.fakeSession.Probe(ctx, p)
	}
	return out
}

type batchRunner struct {
	fakeRunner
	sess *batchSession
}

func (r *batchRunner) Begin(context.Context, string) (Session, error) {
	r.sess = &batchSession{fakeSession: fakeSession{r: &r.fakeRunner}}
	return r.sess, nil
}

const matrixAndProbes = `apiVersion: kestrel.dev/v1alpha1
kind: Scenario
metadata: {name: batch}
spec:
  pods:
    - {name: x/a, labels: {pod: a}, ports: [80/TCP, 132/SCTP]}
    - {name: x/b, labels: {pod: b}, ports: [80/TCP, 132/SCTP]}
  probes:
    - {name: first, from: x/a, to: x/b, port: 80, expect: {verdict: allowed}}
    - {name: sctp, from: x/a, to: x/b, protocol: SCTP, port: 132, expect: {verdict: allowed}}
  reachability:
    port: 80
    ignoreLoopback: true
    expect: |
      -    x/a x/b
      x/a  .   .
      x/b  .   .
`

func TestMatrixCellsGoToABatchSessionTogetherAndSkipsCarryTheirReason(t *testing.T) {
	r := &batchRunner{fakeRunner: fakeRunner{mode: "sim", verdict: func(_ *Cluster, p Probe) Observation {
		if p.Protocol == "SCTP" {
			return Observation{Skipped: "the kernel has no SCTP"}
		}
		return Observation{Verdict: "allowed"}
	}}}
	files, err := Load(writeScenario(t, matrixAndProbes))
	if err != nil {
		t.Fatal(err)
	}
	rep := Run(context.Background(), r, files, Options{})
	if len(r.sess.single) != 2 || len(r.sess.batches) != 1 || len(r.sess.batches[0]) != 2 {
		t.Fatalf("want 2 probes alone and one batch of 2 cells, got %d alone and batches %v", len(r.sess.single), r.sess.batches)
	}
	if p, f, s := rep.Counts(); p != 3 || f != 0 || s != 1 {
		t.Fatalf("counts %d passed %d failed %d skipped, want 3 0 1", p, f, s)
	}
	var out bytes.Buffer
	rep.WriteText(&out, false)
	if !strings.Contains(out.String(), "note: 1 skipped: the kernel has no SCTP") {
		t.Fatalf("the report does not give the skip reason:\n%s", out.String())
	}
}
