// Package sim runs scenarios on a live sim cluster: manifests go through the
// Kubernetes API, the cluster's kubelets and agents make them real, and every
// probe is a real connection made from inside the source pod's network
// namespace. A drop shows as a timeout.
package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	backend  Backend
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
	r, err := NewRunnerFor(simBackend{name: o.Name, stateDir: o.StateDir}, kubeconfig, "kestrel sim up")
	if err != nil {
		return nil, err
	}
	r.stateDir = o.StateDir
	return r, nil
}

// NewRunnerFor connects to the cluster of another backend through its kubeconfig;
// upCmd is what a user runs to bring it up, for the error when it is not.
func NewRunnerFor(b Backend, kubeconfig, upCmd string) (*Runner, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("%s cluster %q is not up (no usable %s; run `%s`): %w", b.Mode(), b.Name(), kubeconfig, upCmd, err)
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
		return nil, fmt.Errorf("%s cluster %q does not answer: %w", b.Mode(), b.Name(), err)
	}
	r := &Runner{name: b.Name(), backend: b, kube: kube, dyn: dyn, live: newLiveState()}
	r.flows = newFlowLog(r.agents)
	return r, nil
}

func (r *Runner) Mode() string { return r.backend.Mode() }

func (r *Runner) Begin(_ context.Context, scenario string) (engine.Session, error) {
	return &session{r: r, scenario: scenario}, nil
}

// Close removes every object the runner made, then lets go of the backend's
// connections (a PodExec backend's port-forwards to the agents).
func (r *Runner) Close() error {
	err := r.clear(context.Background())
	if c, ok := r.backend.(io.Closer); ok {
		err = errors.Join(err, c.Close())
	}
	return err
}
