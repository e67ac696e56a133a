package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kestrelnet/kestrel/install"
)

func init() {
	rootCmd.AddCommand(newInstallCmd(), newUninstallCmd())
}

// installFlags are the flags install and uninstall share.
type installFlags struct {
	kubeconfig string
	params     install.Params
	wait       time.Duration
}

func (f *installFlags) add(cmd *cobra.Command) {
	f.params = install.Defaults()
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default $KUBECONFIG, then ~/.kube/config)")
	cmd.Flags().StringVar(&f.params.Image, "image", "", "the agent image, present on every node (kestrel kind image builds kestrel/agent:<hash>)")
	cmd.Flags().StringVar(&f.params.Namespace, "namespace", f.params.Namespace, "namespace of the agent DaemonSet")
	cmd.Flags().StringVar(&f.params.ClusterName, "cluster-name", f.params.ClusterName, "cluster name in pod identities")
	cmd.Flags().StringVar(&f.params.ServiceCIDR, "service-cidr", f.params.ServiceCIDR, "the cluster's service range(s), comma-separated")
	cmd.Flags().StringVar(&f.params.APIServerHost, "api-server-host", "", "host the agents reach the API server on directly (Kestrel serves the kubernetes Service, so not through it)")
	cmd.Flags().StringVar(&f.params.APIServerPort, "api-server-port", f.params.APIServerPort, "port with --api-server-host")
	cmd.Flags().IntVar(&f.params.APIPort, "agent-api-port", f.params.APIPort, "port on each node's loopback where the agents serve their API's GET requests (status, flows) for port-forwards (kestrel scenario run --mode cluster); 0: off")
	cmd.Flags().BoolVar(&f.params.NodeRoutes, "auto-direct-node-routes", false, "agents route other nodes' pod ranges via their addresses (nodes on one L2 network)")
	cmd.Flags().DurationVar(&f.wait, "wait", 5*time.Minute, "how long to wait for the agents (install) or the node cleanup (uninstall)")
}

func (f *installFlags) clients() (kubernetes.Interface, dynamic.Interface, error) {
	path := f.kubeconfig
	if path == "" {
		path = os.Getenv("KUBECONFIG")
	}
	if path == "" {
		home, _ := os.UserHomeDir()
		path = filepath.Join(home, ".kube", "config")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, nil, fmt.Errorf("--kubeconfig %s: %w", path, err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, err
	}
	dyn, err := dynamic.NewForConfig(rc)
	return cs, dyn, err
}

func newInstallCmd() *cobra.Command {
	var f installFlags
	cmd := &cobra.Command{
		Use:   "install --image IMAGE [--kubeconfig FILE]",
		Short: "Install Kestrel in a cluster (CRDs, RBAC, the agent DaemonSet; manifests embedded in this binary) and wait for the agents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cs, dyn, err := f.clients()
			if err != nil {
				return err
			}
			start := time.Now()
			if err := install.Install(cmd.Context(), cs, dyn, f.params, f.wait); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Kestrel installed: agents ready in %s\n", time.Since(start).Round(time.Second/10))
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func newUninstallCmd() *cobra.Command {
	var f installFlags
	var keepCRDs bool
	cmd := &cobra.Command{
		Use:   "uninstall [--kubeconfig FILE]",
		Short: "Remove Kestrel from a cluster and clean every node (programs detached, pins, CNI configuration and plugin, node routes removed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cs, dyn, err := f.clients()
			if err != nil {
				return err
			}
			if err := install.Uninstall(cmd.Context(), cs, dyn, f.params, keepCRDs, f.wait); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Kestrel uninstalled; every node cleaned")
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&keepCRDs, "keep-crds", false, "keep the CRDs and the policies in them")
	return cmd
}
