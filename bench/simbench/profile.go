// Package simbench measures Kestrel against the real kube-proxy on a sim
// cluster: first-packet TCP connect latency through a service VIP and
// direct, with N services present.
package simbench

import "time"

// Profile is how much a run measures.
type Profile struct {
	Name string
	// Sizes are the service counts measured, each with Backends endpoints.
	Sizes    []int
	Backends int
	// Runs per metric; each run of a latency metric is Connects connects.
	Runs, Connects int
	// The datapath-cost family (BPF_PROG_TEST_RUN).
	DatapathSizes   []int
	DatapathSamples int
	// SteadySeconds is each steady-state run's length (ping-pong, stream).
	SteadySeconds time.Duration
	// SyncTimeout is how long after a size's last write a datapath may take
	// to program it before it is left out of that size's measurements.
	SyncTimeout time.Duration
	// ChangeTimeout is how long after an EndpointSlice update a datapath may
	// take to make the new endpoint reachable before it is recorded as
	// not reachable after that long and left out of that size's endpoint
	// changes.
	ChangeTimeout time.Duration
	// PolicyRules are the egress policy sizes of the policy-scaling runs.
	PolicyRules []int
}

var (
	// Quick runs in about 10 minutes: 1k and 10k services. Its limits are
	// what the 10 minutes leave: a datapath slower than them at 10k is
	// recorded as not programmed (not reachable) after that long, and the
	// full profile measures how long it takes (bench/README.md).
	Quick = Profile{Name: "quick", Sizes: []int{1_000, 10_000}, Backends: 10, Runs: 3, Connects: 100,
		DatapathSizes: []int{1_000, 10_000}, DatapathSamples: 5, SteadySeconds: time.Second, PolicyRules: []int{10, 1_000, 10_000},
		SyncTimeout: 2 * time.Minute, ChangeTimeout: 20 * time.Second}
	// Full adds 50k and 100k services and more repetitions.
	Full = Profile{Name: "full", Sizes: []int{1_000, 10_000, 50_000, 100_000}, Backends: 10, Runs: 5, Connects: 300,
		DatapathSizes: []int{1_000, 10_000, 100_000}, DatapathSamples: 5, SteadySeconds: 3 * time.Second, PolicyRules: []int{10, 1_000, 10_000},
		SyncTimeout: 30 * time.Minute, ChangeTimeout: 30 * time.Minute}
)
