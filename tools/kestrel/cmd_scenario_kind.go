package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	kindcluster "github.com/kestrelnet/kestrel/kind/cluster"
	"github.com/kestrelnet/kestrel/kind/image"
	"github.com/kestrelnet/kestrel/sim/controlplane"
)

// kindUpForRun brings a kind cluster of `nodes` nodes (one control plane, the rest
// workers) up unless it already exists; the returned func takes down only a
// cluster this run brought up.
func kindUpForRun(cmd *cobra.Command, name string, nodes int) (func(), error) {
	if _, err := os.Stat(kindcluster.ImagesPath(name)); err == nil {
		return func() {}, nil
	}
	if nodes < 1 {
		return nil, fmt.Errorf("--nodes: %d, want at least 1", nodes)
	}
	o, err := image.DefaultOptions(controlplane.KubernetesVersion)
	if err != nil {
		return nil, err
	}
	o.Log = cmd.ErrOrStderr()
	info, err := kindcluster.Up(context.Background(), kindcluster.Options{Name: name, Workers: nodes - 1, Images: o,
		Version: controlplane.KubernetesVersion, Wait: 5 * time.Minute, Log: cmd.ErrOrStderr()})
	if err != nil {
		// A half-made cluster is not left behind, but what it shows is kept.
		collectKindLogs(cmd, name)
		_ = kindcluster.Down(name)
		return nil, fmt.Errorf("--up: %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "kind cluster %q up with %d nodes in %s\n", name, len(info.Nodes), info.Took.Round(time.Second/10))
	return func() {
		if err := kindcluster.Down(name); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "kind down: %v\n", err)
		}
	}, nil
}

// collectKindLogs saves the kind cluster's logs and Kestrel's node state after a
// failed run, before --up takes the cluster down.
func collectKindLogs(cmd *cobra.Command, name string) {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("kestrel-kind-logs-%s-%s", name, time.Now().UTC().Format("20060102T150405")))
	if err := kindcluster.CollectLogs(context.Background(), name, dir); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "kind logs: %v\n", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "kind cluster %q logs and node state: %s\n", name, dir)
}

// defaultWorkloadImage is kestrel/workload as `kestrel kind image` builds it
// (built now if missing: cached by its program's hash).
func defaultWorkloadImage() (string, error) {
	o, err := image.DefaultOptions(controlplane.KubernetesVersion)
	if err != nil {
		return "", err
	}
	return image.WorkloadImage(context.Background(), o)
}
