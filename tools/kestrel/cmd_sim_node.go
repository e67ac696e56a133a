package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kestrelnet/kestrel/sim/cgroups"
	"github.com/kestrelnet/kestrel/sim/controlplane"
	"github.com/kestrelnet/kestrel/sim/kubelet"
	"github.com/kestrelnet/kestrel/sim/network"
	"github.com/kestrelnet/kestrel/sim/scheduler"
	"github.com/kestrelnet/kestrel/sim/workload"
)

// simCmd groups the sim cluster's commands. The node-side ones here are
// hidden: `kestrel sim up` starts them, people do not.
var simCmd = &cobra.Command{
	Use:   "sim",
	Short: "Run a Kubernetes cluster made of network namespaces (no containers)",
}

func init() {
	simCmd.AddCommand(newSimKubeletCmd(), newSimSchedulerCmd(), newSimWorkloadCmd(), newSimConnectCmd())
	rootCmd.AddCommand(simCmd)
}

// signalContext ends on SIGTERM or SIGINT, which is how sim stops its processes.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}

// clusterState is the cluster's state dir: --state-dir, else the README's default.
func clusterState(name, stateDir string) (string, error) {
	if err := network.ValidateName(name); err != nil {
		return "", err
	}
	if stateDir == "" {
		stateDir = controlplane.DefaultStateDir(name)
	}
	return filepath.Abs(stateDir)
}

func newSimKubeletCmd() *cobra.Command {
	var name, node, stateDir string
	cmd := &cobra.Command{
		Use:    "kubelet --name NAME --node node-i [--state-dir DIR]",
		Short:  "Run a sim node's kubelet (it enters the node's network namespace itself)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			state, err := clusterState(name, stateDir)
			if err != nil {
				return err
			}
			idx, err := network.NodeIndex(node)
			if err != nil {
				return fmt.Errorf("--node: %w", err)
			}
			if err := kubelet.CheckMountNamespace(); err != nil {
				return err
			}
			if err := kubelet.EnterNodeNetns(network.NodeNetns(name, idx)); err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			nodeDir := filepath.Join(state, "nodes", node)
			// Pods get cgroups under the node's, where the agent's socket
			// programs apply; without a cgroup v2 mount they get none.
			cgroupDir, err := cgroups.NodeDir(name, node)
			if err != nil {
				fmt.Fprintf(os.Stderr, "kubelet: pods get no cgroups: %v\n", err)
				cgroupDir = ""
			}
			ctx, stop := signalContext()
			defer stop()
			return kubelet.Run(ctx, kubelet.Options{
				Name:       name,
				Node:       node,
				Kubeconfig: filepath.Join(state, "kubeconfig"),
				CNIConfDir: filepath.Join(nodeDir, "cni"),
				CNIBinDir:  filepath.Dir(self),
				StateDir:   filepath.Join(nodeDir, "kubelet"),
				KestrelBin: self,
				CgroupDir:  cgroupDir,
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "kestrel", "cluster name")
	cmd.Flags().StringVar(&node, "node", "", "node name, node-<i>")
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "cluster state dir (default /run/kestrel/sim/NAME, or $KESTREL_SIM_STATE/NAME)")
	cmd.MarkFlagRequired("node")
	return cmd
}

func newSimSchedulerCmd() *cobra.Command {
	var name, stateDir string
	cmd := &cobra.Command{
		Use:    "scheduler --name NAME [--state-dir DIR]",
		Short:  "Run the sim cluster's scheduler",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			state, err := clusterState(name, stateDir)
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			return scheduler.Run(ctx, filepath.Join(state, "kubeconfig"))
		},
	}
	cmd.Flags().StringVar(&name, "name", "kestrel", "cluster name")
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "cluster state dir (default /run/kestrel/sim/NAME, or $KESTREL_SIM_STATE/NAME)")
	return cmd
}

func newSimWorkloadCmd() *cobra.Command {
	var pod, ports, httpPorts, host, netnsName, server string
	cmd := &cobra.Command{
		Use:    "workload --pod NS/NAME --ports 80/TCP,81/UDP [--http 8080,...]",
		Short:  "Serve echo servers on a pod's ports (in the current network namespace)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, err := workload.ParsePorts(ports)
			if err != nil {
				return fmt.Errorf("--ports: %w", err)
			}
			list, err = withHTTP(list, httpPorts)
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			if server != workload.ServerEcho && server != workload.ServerJSONMock {
				return fmt.Errorf("--server %q: want %q or nothing", server, workload.ServerJSONMock)
			}
			return workload.Run(ctx, workload.Options{Pod: pod, Ports: list, Host: host, Server: server})
		},
	}
	cmd.Flags().StringVar(&pod, "pod", "", "pod as namespace/name, named in every reply")
	cmd.Flags().StringVar(&ports, "ports", "", "ports: NUMBER[/TCP|UDP|SCTP[/http]],...")
	cmd.Flags().StringVar(&httpPorts, "http", "", "TCP ports to serve HTTP on, comma-separated")
	cmd.Flags().StringVar(&host, "host", "", "address to bind (default: all)")
	cmd.Flags().StringVar(&server, "server", "", "what the HTTP ports answer as: json-mock (cilium connectivity test's echo), or the echo (default)")
	cmd.Flags().StringVar(&netnsName, "netns", "", "the namespace the kubelet started it in; unused, it names the cluster in ps")
	cmd.MarkFlagRequired("pod")
	return cmd
}

func newSimConnectCmd() *cobra.Command {
	var (
		request string
		batch   bool
	)
	cmd := &cobra.Command{
		Use:   "connect --request JSON | --batch",
		Short: "Connect from inside a pod (as a process of the pod, in its cgroup) and print what happened as JSON",
		Long: "Connect from inside a pod and print the workload.ConnectResult as JSON. With --batch, a JSON " +
			"array of workload.ConnectRequest is read from stdin, run all at once, and their results printed " +
			"as an array in the same order (--mode cluster execs this in scenario pods).",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if batch {
				var reqs []workload.ConnectRequest
				if err := json.NewDecoder(cmd.InOrStdin()).Decode(&reqs); err != nil {
					return fmt.Errorf("--batch: stdin: %w", err)
				}
				return json.NewEncoder(cmd.OutOrStdout()).Encode(workload.ConnectAll(reqs))
			}
			var req workload.ConnectRequest
			if err := json.Unmarshal([]byte(request), &req); err != nil {
				return fmt.Errorf("--request: %w", err)
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(workload.Connect(req))
		},
	}
	cmd.Flags().StringVar(&request, "request", "", "a workload.ConnectRequest")
	cmd.Flags().BoolVar(&batch, "batch", false, "read a JSON array of requests from stdin")
	cmd.MarkFlagsOneRequired("request", "batch")
	cmd.MarkFlagsMutuallyExclusive("request", "batch")
	return cmd
}

// withHTTP marks the --http ports as HTTP, adding those not already listed.
func withHTTP(ports []workload.Port, httpPorts string) ([]workload.Port, error) {
	if httpPorts == "" {
		return ports, nil
	}
	for _, s := range strings.Split(httpPorts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("--http: %q is not a port", s)
		}
		found := false
		for i := range ports {
			if ports[i].Number == n && ports[i].Protocol == "TCP" {
				ports[i].HTTP, found = true, true
			}
		}
		if !found {
			ports = append(ports, workload.Port{Number: n, Protocol: "TCP", HTTP: true})
		}
	}
	return ports, nil
}
