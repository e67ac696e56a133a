package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kestrelnet/kestrel/sim/cgroups"
	"github.com/kestrelnet/kestrel/sim/controlplane"
	"github.com/kestrelnet/kestrel/sim/network"
)

// Down removes every process, namespace, link and pin the cluster made, and
// its state dir. It is idempotent and needs nothing but the name: it works
// after a crash of whatever brought the cluster up.
func Down(name string) error {
	if err := network.ValidateName(name); err != nil {
		return err
	}
	state := controlplane.DefaultStateDir(name)
	var errs []error
	// Node processes first, so no kubelet recreates what is being removed.
	pids, _ := filepath.Glob(filepath.Join(state, "pids", "*.pid"))
	for _, p := range pids {
		proc := strings.TrimSuffix(filepath.Base(p), ".pid")
		if isControlPlane(proc) {
			continue
		}
		if err := controlplane.StopProcess(state, proc, 10*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", proc, err))
		}
	}
	if err := controlplane.Stop(state); err != nil {
		errs = append(errs, fmt.Errorf("control plane: %w", err))
	}
	if err := network.Down(name); err != nil {
		errs = append(errs, fmt.Errorf("network: %w", err))
	}
	// The pods' cgroups, with anything still in them (the network's
	// teardown killed what ran in the namespaces).
	if dir, err := cgroups.ClusterDir(name); err == nil {
		if err := cgroups.Remove(dir); err != nil {
			errs = append(errs, fmt.Errorf("cgroups: %w", err))
		}
		// Their parent is shared by every cluster: it goes with the last.
		syscall.Rmdir(filepath.Dir(dir))
	}
	if err := os.RemoveAll(filepath.Join(bpffsRoot, "kestrel", name)); err != nil {
		errs = append(errs, fmt.Errorf("bpffs pins: %w", err))
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(state); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func isControlPlane(proc string) bool {
	for _, p := range controlplane.Processes {
		if p == proc {
			return true
		}
	}
	return false
}
