// Package unit runs scenarios without a cluster: the agent's control-plane code
// computes map state from the manifests, and the real compiled datapath runs
// crafted frames through BPF_PROG_TEST_RUN. Each node of a scenario gets its own
// loaded datapath, so a probe crosses the hooks a real packet would: the source
// pod's veth on its node, then the destination pod's veth on its node.
package unit

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/scenarios/engine"
)

// Runner is the unit-mode runner. Loading a datapath is mostly verifier time,
// so datapaths a finished scenario used are reset and handed to the next one
// that needs the same node device settings (they are load-time constants).
type Runner struct {
	mu   sync.Mutex
	idle map[string][]*datapath.Datapath // by deviceKey
	// proxies are each loaded datapath's proxy listeners (l7.go).
	proxies map[*datapath.Datapath][]io.Closer
}

type pooled struct {
	key string
	dp  *datapath.Datapath
}

func deviceKey(nd datapath.NodeDevice) string { return fmt.Sprintf("%+v", nd) }

// NewRunner checks that this kernel can run the datapath and returns the
// unit-mode runner. Close it to release the datapaths it keeps.
func NewRunner() (*Runner, error) {
	if err := datapath.CheckKernel(); err != nil {
		return nil, fmt.Errorf("unit mode needs the eBPF datapath: %w", err)
	}
	return &Runner{idle: map[string][]*datapath.Datapath{}, proxies: map[*datapath.Datapath][]io.Closer{}}, nil
}

func (*Runner) Mode() string { return "unit" }

func (r *Runner) Begin(_ context.Context, scenario string) (engine.Session, error) {
	return newSession(scenario, r), nil
}

// acquire returns an idle datapath with the node device settings nd, or
// loads a new one.
func (r *Runner) acquire(nd datapath.NodeDevice) (pooled, error) {
	key := deviceKey(nd)
	r.mu.Lock()
	if list := r.idle[key]; len(list) > 0 {
		dp := list[len(list)-1]
		r.idle[key] = list[:len(list)-1]
		r.mu.Unlock()
		return pooled{key, dp}, nil
	}
	r.mu.Unlock()
	dp, err := datapath.Load(datapath.Config{TestDevices: true, MonitorAggregation: datapath.MonitorAggregationNone, NodeDevice: nd})
	if err != nil {
		return pooled{}, err
	}
	lns, err := openProxyListeners(dp)
	if err != nil {
		dp.Close()
		return pooled{}, err
	}
	r.mu.Lock()
	r.proxies[dp] = lns
	r.mu.Unlock()
	return pooled{key, dp}, nil
}

// closeDatapath closes a datapath and its proxy listeners.
func (r *Runner) closeDatapath(dp *datapath.Datapath) {
	r.mu.Lock()
	lns := r.proxies[dp]
	delete(r.proxies, dp)
	r.mu.Unlock()
	for _, l := range lns {
		l.Close()
	}
	dp.Close()
}

// release resets a datapath for the next scenario; one that cannot be reset
// is closed instead.
func (r *Runner) release(p pooled) {
	if err := p.dp.Reset(); err != nil {
		r.closeDatapath(p.dp)
		return
	}
	r.mu.Lock()
	r.idle[p.key] = append(r.idle[p.key], p.dp)
	r.mu.Unlock()
}

// Close releases the idle datapaths.
func (r *Runner) Close() error {
	r.mu.Lock()
	var all []*datapath.Datapath
	for _, list := range r.idle {
		all = append(all, list...)
	}
	clear(r.idle)
	r.mu.Unlock()
	for _, dp := range all {
		r.closeDatapath(dp)
	}
	return nil
}
