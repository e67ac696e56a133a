// Package clustermode runs scenarios against any existing cluster (--mode cluster
// --kubeconfig FILE) with the live runner of scenarios/sim, through the cluster's
// API alone: scenario pods run the workload image, probes run in them (exec),
// the scenario's objects are applied and removed with the namespaces the run made.
// No node is entered. Where the cluster runs Kestrel, its agents are read
// through port-forwards (agents.go): policy revisions, flows and drop
// reasons are checked as in sim; elsewhere whatever implements NetworkPolicy
// there is judged by its verdicts alone (sim.PodExec).
package clustermode

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kestrelnet/kestrel/scenarios/sim"
)

// Options say which cluster and how its scenario pods run.
type Options struct {
	Kubeconfig    string
	WorkloadImage string // the image with the kestrel binary (`kestrel kind image` builds kestrel/workload)
	// ServiceCIDRs are the cluster's service ranges: probes may go there
	// (kubeadm's default 10.96.0.0/12 when empty).
	ServiceCIDRs []netip.Prefix
	// Settle is how long after applying objects the probes start where
	// no Kestrel agent reports its policy revision (and for services);
	// 2s when zero.
	Settle time.Duration
}

// Backend is an existing cluster for sim.Runner.
type Backend struct {
	*Nodes
	name   string
	kube   kubernetes.Interface
	rest   *rest.Config
	settle time.Duration
	agents *kestrel // Kestrel's agents, or why none is read
}

// NewRunner connects the live runner to the cluster of o.Kubeconfig.
func NewRunner(ctx context.Context, o Options) (*sim.Runner, error) {
	b, err := Open(ctx, o)
	if err != nil {
		return nil, err
	}
	return sim.NewRunnerFor(b, o.Kubeconfig, "a cluster (--kubeconfig names it)")
}

// Open reads the cluster's nodes.
func Open(ctx context.Context, o Options) (*Backend, error) {
	if o.Kubeconfig == "" {
		return nil, fmt.Errorf("--mode cluster needs --kubeconfig FILE")
	}
	if o.WorkloadImage == "" {
		return nil, fmt.Errorf("--mode cluster needs --workload-image")
	}
	loader := &clientcmd.ClientConfigLoadingRules{ExplicitPath: o.Kubeconfig}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(loader, &clientcmd.ConfigOverrides{})
	rc, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s: %w", o.Kubeconfig, err)
	}
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s: %w", o.Kubeconfig, err)
	}
	name := raw.CurrentContext
	if name == "" {
		name = o.Kubeconfig
	}
	rc.QPS, rc.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	svc := o.ServiceCIDRs
	if len(svc) == 0 {
		svc = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")}
	}
	nodes, err := ReadNodes(ctx, cs, o.WorkloadImage, svc...)
	if err != nil {
		return nil, fmt.Errorf("cluster %q: %w", name, err)
	}
	settle := o.Settle
	if settle == 0 {
		settle = 2 * time.Second
	}
	agents, err := findKestrel(ctx, cs, rc)
	if err != nil {
		return nil, fmt.Errorf("cluster %q: %w", name, err)
	}
	return &Backend{Nodes: nodes, name: name, kube: cs, rest: rc, settle: settle, agents: agents}, nil
}

func (b *Backend) Mode() string          { return "cluster" }
func (b *Backend) Name() string          { return b.name }
func (b *Backend) Settle() time.Duration { return b.settle }

// Outside: no host stands in for the world on a cluster reached through its API.
func (b *Backend) Outside() bool { return false }

// AgentSockets: no socket is reached; the agents are read through the API (Agents).
func (b *Backend) AgentSockets() ([]string, error) { return nil, nil }

// Agents are Kestrel's agents through their port-forwards (agents.go), or an
// error wrapping sim.ErrNoAgents saying why none is read.
func (b *Backend) Agents(ctx context.Context) ([]sim.Agent, error) { return b.agents.agents(ctx) }

// Note says whether the agents are read (the run prints it).
func (b *Backend) Note() string { return b.agents.note() }

// Close ends the port-forwards.
func (b *Backend) Close() error {
	b.agents.close()
	return nil
}

// PodNetns and NodeNetns: no namespace of the cluster is on this machine;
// sim.PodExec's Connect runs probes instead.
func (b *Backend) PodNetns(uid string) (string, error) {
	return "", fmt.Errorf("cluster mode enters no pod namespace (pod %s)", uid)
}

func (b *Backend) NodeNetns(i int) (string, error) {
	return "", fmt.Errorf("cluster mode enters no node namespace (node %d)", i)
}

var _ sim.PodExec = (*Backend)(nil)
