package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	kindcluster "github.com/kestrelnet/kestrel/kind/cluster"
	"github.com/kestrelnet/kestrel/kind/image"
	"github.com/kestrelnet/kestrel/kind/runtimefix"
	"github.com/kestrelnet/kestrel/sim/controlplane"
)

var kindCmd = &cobra.Command{
	Use:   "kind",
	Short: "Kind clusters built offline, with Kestrel as their CNI and kube-proxy replacement",
}

func init() {
	rootCmd.AddCommand(kindCmd)
	kindCmd.AddCommand(newKindRuntimeFixCmd(), newKindImageCmd(), newKindUpCmd(), newKindDownCmd(), newKindKubeconfigCmd())
}

func newKindUpCmd() *cobra.Command {
	var name, cni, policy string
	var workers int
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "up [--name N] [--workers K] [--cni kestrel|ptp [--network-policy kube-network-policies]]",
		Short: "Create a kind cluster from the offline images, Kestrel its CNI and kube-proxy replacement; return when nodes are Ready, agents healthy and CoreDNS available",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if workers < 0 {
				return fmt.Errorf("--workers: %d is negative", workers)
			}
			o, err := image.DefaultOptions(controlplane.KubernetesVersion)
			if err != nil {
				return err
			}
			o.Log = cmd.ErrOrStderr()
			info, err := kindcluster.Up(cmd.Context(), kindcluster.Options{Name: name, Workers: workers, Images: o,
				Version: controlplane.KubernetesVersion, Wait: wait, Log: cmd.ErrOrStderr(), CNI: cni, NetworkPolicy: policy})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "kind cluster %q is up: %d nodes in %s\nkubectl --kubeconfig %s get nodes\n",
				info.Name, len(info.Nodes), info.Took.Round(time.Second/10), info.Kubeconfig)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "kestrel", "cluster name")
	cmd.Flags().IntVar(&workers, "workers", 1, "number of worker nodes (besides the control plane)")
	cmd.Flags().DurationVar(&wait, "wait", 5*time.Minute, "how long to wait for nodes, agents and CoreDNS")
	cmd.Flags().StringVar(&cni, "cni", kindcluster.CNIKestrel, "pod networking: kestrel (Kestrel is the CNI and kube-proxy replacement), or ptp (kind's ptp networking, kube-proxy in iptables mode, no Kestrel; IPv4)")
	cmd.Flags().StringVar(&policy, "network-policy", "", "with --cni ptp: the NetworkPolicy implementation to install (kube-network-policies), none by default")
	return cmd
}

func newKindDownCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "down [--name N]",
		Short: "Delete the kind cluster's nodes and kubeconfig (idempotent; the images and kind's docker network stay)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return kindcluster.Down(name)
		},
	}
	cmd.Flags().StringVar(&name, "name", "kestrel", "cluster name")
	return cmd
}

func newKindKubeconfigCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "kubeconfig [--name N]",
		Short: "Print the path of the kind cluster's admin kubeconfig",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), kindcluster.KubeconfigPath(name))
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "kestrel", "cluster name")
	return cmd
}

func newKindImageCmd() *cobra.Command {
	var rebuild, verbose bool
	cmd := &cobra.Command{
		Use:   "image [--rebuild]",
		Short: "Build, offline, the kind node image, the agent image and the workload image (cached: rebuilt only when an input changes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := image.DefaultOptions(controlplane.KubernetesVersion)
			if err != nil {
				return err
			}
			o.Rebuild, o.Verbose, o.Log = rebuild, verbose, cmd.ErrOrStderr()
			res, err := image.Build(cmd.Context(), o, controlplane.KubernetesVersion)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node image %s (cached: %v)\nagent image %s\nworkload image %s\nin %s\n",
				res.Node, res.NodeCached, res.Agent, res.Workload, res.Took.Round(time.Second/10))
			return nil
		},
	}
	cmd.Flags().BoolVar(&rebuild, "rebuild", false, "rebuild every image even when its inputs did not change")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "show the builders' output")
	return cmd
}

func newKindRuntimeFixCmd() *cobra.Command {
	var undo, force bool
	cmd := &cobra.Command{
		Use:   "runtime-fix [--undo]",
		Short: "Make dockerd run --privileged containers on a host whose bounding set lacks CAP_SYS_RESOURCE (kestrel-runc as default runtime; nothing elsewhere)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			p := runtimefix.DefaultPaths
			var changed bool
			if undo {
				var err error
				if changed, err = runtimefix.Undo(p); err != nil {
					return err
				}
				fmt.Fprintf(out, "runtime-fix: undone (%s changed: %v)\n", p.DaemonJSON, changed)
			} else {
				needed, err := runtimefix.Needed()
				if err != nil {
					return err
				}
				if !needed && !force {
					fmt.Fprintln(out, "runtime-fix: the bounding set has CAP_SYS_RESOURCE, nothing to do")
					return nil
				}
				src, err := siblingBinary("kestrel-runc")
				if err != nil {
					return err
				}
				if changed, err = runtimefix.Apply(p, src); err != nil {
					return err
				}
				fmt.Fprintf(out, "runtime-fix: %s is dockerd's default runtime (%s changed: %v)\n", p.Wrapper, p.DaemonJSON, changed)
			}
			if changed {
				reloaded, err := runtimefix.Reload(p)
				if err != nil {
					return fmt.Errorf("reload dockerd: %w", err)
				}
				if reloaded {
					fmt.Fprintln(out, "runtime-fix: dockerd reloaded its configuration")
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&undo, "undo", false, "restore daemon.json as it was and remove the wrapper")
	cmd.Flags().BoolVar(&force, "force", false, "apply even when the bounding set has CAP_SYS_RESOURCE")
	return cmd
}

// siblingBinary finds a program built beside this one (make build puts them all in bin/).
func siblingBinary(name string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	p := filepath.Join(filepath.Dir(self), name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found beside %s: run `make build`", name, self)
	}
	return p, nil
}
