package sim

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/scenarios/engine"
)

// remoteAgent is an agent API on another host's clock: its monotonic clock
// runs an hour ahead of this machine's, and its flows carry its own times.
type remoteAgent struct {
	mu    sync.Mutex
	ahead uint64
	flows []api.Flow
}

func (a *remoteAgent) PutEndpoint(context.Context, api.EndpointRequest) (api.EndpointResponse, error) {
	return api.EndpointResponse{}, fmt.Errorf("%w: read-only", api.ErrInvalid)
}
func (a *remoteAgent) DeleteEndpoint(context.Context, string) error { return nil }
func (a *remoteAgent) Status(context.Context) api.Status            { return api.Status{PolicyRevision: 1} }
func (a *remoteAgent) Healthz(context.Context) error                { return nil }

// Flows gives the flows after since, with the agent's clock.
func (a *remoteAgent) Flows(since uint64) api.Flows {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := api.Flows{Instance: "remote", Next: since, NowNs: monotonicNow() + a.ahead}
	for _, f := range a.flows {
		if f.Seq > since {
			out.Flows = append(out.Flows, f)
			out.Next = f.Seq
		}
	}
	return out
}

func (a *remoteAgent) record(f api.Flow) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f.Seq = uint64(len(a.flows) + 1)
	f.TimeNs = monotonicNow() + a.ahead
	a.flows = append(a.flows, f)
}

// A probe's flows on a remote agent are found through its read-only TCP API,
// by the agent's times placed on this machine's clock: the drop reason of
// this probe is read, not that of an earlier probe between the same pods.
func TestARemoteAgentsFlowsAreReadOnThisClock(t *testing.T) {
	ln, err := api.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The agent's clock is an hour ahead of this machine's: unplaced, the
	// earlier probe's flow would seem to come after this probe began.
	agent := &remoteAgent{ahead: uint64(time.Hour)}
	go api.ServeReadOnly(ctx, ln, agent, slog.New(slog.NewTextHandler(io.Discard, nil)))
	remote := Agent{Name: "remote", Client: api.NewTCPClient(ln.Addr().String()), OtherClock: true}
	log := newFlowLog(func(context.Context) ([]Agent, error) { return []Agent{remote}, nil })

	earlier := api.Flow{Src: "10.244.0.10", Dst: "10.244.1.10", SrcPort: 40000, DstPort: 80, Protocol: protoTCP,
		Direction: "ingress", Verdict: "dropped", Reason: "POLICY_DENYLIST"}
	agent.record(earlier)
	// Ten seconds before this probe, as an earlier step's would be: far
	// more than any round trip's error in placing it.
	agent.flows[0].TimeNs -= uint64(10 * time.Second)

	q := probeFlows{src: netip.MustParseAddr("10.244.0.10"), dst: netip.MustParseAddr("10.244.1.10"), protocol: protoTCP, port: 80, since: monotonicNow()}
	this := earlier
	this.SrcPort, this.Reason = 40001, "POLICY_DENIED"
	agent.record(this)
	var o engine.Observation
	log.observe(ctx, q, &o)
	if o.EventsUnobserved || o.Reason != "POLICY_DENIED" || len(o.Flows) != 1 {
		t.Fatalf("observation: unobserved %v, reason %q, %d flows; evidence %s", o.EventsUnobserved, o.Reason, len(o.Flows), o.Evidence)
	}
	if !strings.Contains(o.Evidence, "40001") || strings.Contains(o.Evidence, "40000") {
		t.Errorf("evidence names other flows than this probe's: %s", o.Evidence)
	}
}

// Where no agent is read, the observation says so and why, and carries no
// drop reason to check.
func TestNoAgentsMeansVerdictsAlone(t *testing.T) {
	log := newFlowLog(func(context.Context) ([]Agent, error) {
		return nil, fmt.Errorf("%w: the cluster runs no Kestrel agent", ErrNoAgents)
	})
	var o engine.Observation
	log.observe(context.Background(), probeFlows{since: monotonicNow()}, &o)
	if !o.EventsUnobserved || !strings.Contains(o.Evidence, "runs no Kestrel agent") || !strings.Contains(o.Evidence, "verdicts alone") {
		t.Errorf("unobserved %v, evidence %q", o.EventsUnobserved, o.Evidence)
	}
}

// A probe exec'd in a pod sends its packets any time until its batch
// answers: a refresh another probe made after this one began, but before its
// packets, does not stand for its flows.
func TestAProbeIsObservedAfterItEnds(t *testing.T) {
	ln, err := api.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agent := &remoteAgent{}
	go api.ServeReadOnly(ctx, ln, agent, slog.New(slog.NewTextHandler(io.Discard, nil)))
	remote := Agent{Name: "remote", Client: api.NewTCPClient(ln.Addr().String()), OtherClock: true}
	log := newFlowLog(func(context.Context) ([]Agent, error) { return []Agent{remote}, nil })

	q := probeFlows{src: netip.MustParseAddr("10.244.0.10"), dst: netip.MustParseAddr("10.244.1.10"), protocol: protoTCP, port: 80, since: monotonicNow()}
	time.Sleep(flowLatency + 20*time.Millisecond)
	if err := log.refresh(ctx, monotonicNow()); err != nil { // another probe's
		t.Fatal(err)
	}
	agent.record(api.Flow{Src: "10.244.0.10", Dst: "10.244.1.10", SrcPort: 40000, DstPort: 80, Protocol: protoTCP,
		Direction: "ingress", Verdict: "dropped", Reason: "POLICY_DENIED"})
	q.until = monotonicNow()
	var o engine.Observation
	log.observe(ctx, q, &o)
	if o.Reason != "POLICY_DENIED" {
		t.Errorf("reason %q, want the flow sent after the other probe's refresh; evidence %s", o.Reason, o.Evidence)
	}
}
