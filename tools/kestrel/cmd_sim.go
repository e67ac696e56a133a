package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/kestrelnet/kestrel/sim/cluster"
	"github.com/kestrelnet/kestrel/sim/controlplane"
	"github.com/kestrelnet/kestrel/sim/network"
)

func init() {
	simCmd.AddCommand(newSimUpCmd(), newSimDownCmd(), newSimStatusCmd(), newSimKubeconfigCmd())
}

func newSimUpCmd() *cobra.Command {
	var name string
	var nodes int
	var lbMode, kubeProxy string
	var socketLB bool
	cmd := &cobra.Command{
		Use:   "up [--nodes N] [--name NAME] [--bpf-lb-mode snat|dsr] [--bpf-lb-sock=false] [--kube-proxy I=MODE,...]",
		Short: "Start a sim cluster (or complete a partly running one) and wait until it is usable",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkNodeCount(nodes); err != nil {
				return err
			}
			kp, err := cluster.ParseKubeProxyNodes(kubeProxy)
			if err != nil {
				return fmt.Errorf("--kube-proxy: %w", err)
			}
			info, err := cluster.Up(context.Background(), cluster.Options{Name: name, Nodes: nodes, LBMode: lbMode, NoSocketLB: !socketLB, KubeProxy: kp})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sim cluster %q is up: %s in %s\nkubectl --kubeconfig %s get nodes\n",
				info.Name, nodeCount(info.Nodes), info.Took.Round(1e7), info.Kubeconfig)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "kestrel", "cluster name")
	cmd.Flags().IntVar(&nodes, "nodes", 1, "number of nodes")
	cmd.Flags().StringVar(&lbMode, "bpf-lb-mode", "snat", "how the agents send a NodePort flow to a backend on another node: snat or dsr")
	cmd.Flags().BoolVar(&socketLB, "bpf-lb-sock", true, "socket-level load balancing in the agents (pods' connect() to a ClusterIP goes straight to a backend); false: per-packet translation only")
	cmd.Flags().StringVar(&kubeProxy, "kube-proxy", "", "run the real kube-proxy instead of Kestrel's service translation on these nodes: INDEX=MODE,... with MODE iptables-legacy, iptables-nft or nftables (their agents run with --kube-proxy-replacement=false)")
	return cmd
}

func newSimDownCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "down [--name NAME]",
		Short: "Remove every process, namespace, link and pin of a sim cluster (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cluster.Down(name)
		},
	}
	cmd.Flags().StringVar(&name, "name", "kestrel", "cluster name")
	return cmd
}

func newSimStatusCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "status [--name NAME]",
		Short: "Show a sim cluster's processes and whether the API answers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			state := controlplane.DefaultStateDir(name)
			out := cmd.OutOrStdout()
			rep := controlplane.Status(context.Background(), state)
			fmt.Fprintf(out, "cluster %s (state %s)\n", name, state)
			pids, _ := filepath.Glob(filepath.Join(state, "pids", "*.pid"))
			names := []string{}
			for _, p := range pids {
				names = append(names, filepath.Base(p[:len(p)-len(".pid")]))
			}
			sort.Strings(names)
			for _, n := range names {
				pid, running := controlplane.RunningPID(state, n)
				fmt.Fprintf(out, "  %-26s pid %-7d running=%v\n", n, pid, running)
			}
			outside := network.OutsideNetns(name)
			if _, err := os.Stat(network.NetnsPath(outside)); err == nil {
				fmt.Fprintf(out, "outside host: netns %s (%s, %s)\n", outside, network.OutsideIP(), network.OutsideIP6())
			} else {
				fmt.Fprintf(out, "outside host: netns %s is missing\n", outside)
			}
			if _, running := controlplane.RunningPID(state, cluster.RelayProcess); running {
				fmt.Fprintf(out, "Hubble relay: %s (hubble observe --server %s)\n", cluster.RelayAddress, cluster.RelayAddress)
				fmt.Fprintf(out, "Service map: http://%s/  metrics: http://%s/metrics (relay), <node-ip>:%d (agents)\n",
					cluster.ServiceMapAddress, cluster.RelayMetricsAddress, cluster.AgentMetricsPort)
			}
			if rep.Ready {
				fmt.Fprintf(out, "API: ready (kubeconfig %s)\n", rep.Kubeconfig)
				return nil
			}
			fmt.Fprintf(out, "API: not ready: %s\n", rep.ReadyError)
			return fmt.Errorf("sim cluster %s is not ready", name)
		},
	}
	cmd.Flags().StringVar(&name, "name", "kestrel", "cluster name")
	return cmd
}

func newSimKubeconfigCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "kubeconfig [--name NAME]",
		Short: "Print the path of a sim cluster's admin kubeconfig",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := filepath.Join(controlplane.DefaultStateDir(name), "kubeconfig")
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("no kubeconfig for sim cluster %q (is it up?): %w", name, err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), path)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "kestrel", "cluster name")
	return cmd
}

// checkNodeCount refuses a --nodes a cluster cannot have, rather than
// quietly bringing up the default.
func checkNodeCount(n int) error {
	if n < 1 || n > network.MaxNodes {
		return fmt.Errorf("--nodes %d: a sim cluster has 1 to %d nodes", n, network.MaxNodes)
	}
	return nil
}

func nodeCount(n int) string {
	if n == 1 {
		return "1 node"
	}
	return fmt.Sprintf("%d nodes", n)
}
