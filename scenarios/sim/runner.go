// Package sim runs scenarios on a live sim cluster: manifests go through the
// Kubernetes API, the cluster's kubelets and agents make them real, and every
// probe is a real connection made from inside the source pod's network
// namespace. A drop shows as a timeout.
package sim

import (
	"context"
	"fmt"
	"path/filepath"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kestrelnet/kestrel/scenarios/engine"
	"github.com/kestrelnet/kestrel/sim/controlplane"
)

// Options name the cluster to run against.
type Options struct {
	Name     string // cluster name (default kestrel)
	StateDir string // default /run/kestrel/sim/NAME (or $KESTREL_SIM_STATE/NAME)
}

// Runner is the sim-mode runner.
type Runner struct {
	name     string
	stateDir string
	kube     kubernetes.Interface
	dyn      dynamic.Interface
	live     *liveState // objects this runner made, across scenarios
	flows    *flowLog   // what the agents' datapaths reported
}

// NewRunner connects to a running sim cluster.
func NewRunner(o Options) (*Runner, error) {
	if o.Name == "" {
		o.Name = "kestrel"
	}
	if o.StateDir == "" {
		o.StateDir = controlplane.DefaultStateDir(o.Name)
	}
	kubeconfig := filepath.Join(o.StateDir, "kubeconfig")
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("sim cluster %q is not up (no usable %s; run `kestrel sim up`): %w", o.Name, kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := kube.Discovery().ServerVersion(); err != nil {
		return nil, fmt.Errorf("sim cluster %q does not answer: %w", o.Name, err)
	}
	return &Runner{name: o.Name, stateDir: o.StateDir, kube: kube, dyn: dyn, live: newLiveState(), flows: newFlowLog(o.StateDir)}, nil
}

func (*Runner) Mode() string { return "sim" }

func (r *Runner) Begin(_ context.Context, scenario string) (engine.Session, error) {
	return &session{r: r, scenario: scenario}, nil
}

// Close removes every object the runner made.
func (r *Runner) Close() error {
	return r.clear(context.Background())
}
