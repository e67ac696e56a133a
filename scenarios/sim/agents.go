package sim

import (
	"context"
	"errors"

	"github.com/kestrelnet/kestrel/agent/api"
)

// Agent is one node's Kestrel agent as the runner reads it: its status
// (policy revision), flows and services.
type Agent struct {
	// Name says where the agent is, in messages; the flow cursors are kept
	// by it.
	Name   string
	Client *api.Client
	// OtherClock says the agent's CLOCK_MONOTONIC is not this machine's (a
	// node of a remote cluster): its flows' times are placed on this
	// machine's clock by the answers' nowNs (flows.go). Sim and kind nodes
	// share this machine's kernel, and so its clock.
	OtherClock bool
}

// ErrNoAgents is what a PodExec backend's Agents wraps when the cluster runs
// no Kestrel agent the runner can read: then verdicts alone are compared
// (Observation.EventsUnobserved) and the run says why.
var ErrNoAgents = errors.New("no Kestrel agent is read")

// agents are every node's agent: a PodExec backend's through the cluster's
// API, the others' through their unix sockets.
func (r *Runner) agents(ctx context.Context) ([]Agent, error) {
	if pe, ok := r.backend.(PodExec); ok {
		return pe.Agents(ctx)
	}
	sockets, err := r.backend.AgentSockets()
	if err != nil {
		return nil, err
	}
	out := make([]Agent, len(sockets))
	for i, s := range sockets {
		out[i] = Agent{Name: s, Client: api.NewClient(s)}
	}
	return out, nil
}

// readsAgents reports whether the runner reads the cluster's agents (always,
// but on a PodExec backend whose cluster runs no readable Kestrel agent).
func (r *Runner) readsAgents(ctx context.Context) bool {
	_, err := r.agents(ctx)
	return !errors.Is(err, ErrNoAgents)
}

// Note is what the run should say about how the runner sees the cluster's
// datapath (a PodExec backend's: whether flows are read); empty otherwise.
func (r *Runner) Note() string {
	if n, ok := r.backend.(interface{ Note() string }); ok {
		return n.Note()
	}
	return ""
}
