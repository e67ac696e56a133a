package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/sim/cluster"
)

func init() {
	cmd := &cobra.Command{Use: "service", Short: "Inspect the agents' load-balancing state"}
	cmd.AddCommand(newServiceListCmd())
	rootCmd.AddCommand(cmd)
}

func newServiceListCmd() *cobra.Command {
	var name, node, socket, output string
	cmd := &cobra.Command{
		Use:   "list [--node NODE | --socket PATH] [-o table|json]",
		Short: "List each frontend and its backends as one agent sees them (like `cilium service list`)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if socket == "" {
				socket = cluster.AgentSocket(name, node)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			svcs, err := api.NewClient(socket).Services(ctx)
			if err != nil {
				return fmt.Errorf("agent at %s: %w", socket, err)
			}
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(svcs)
			case "table":
				printServices(cmd.OutOrStdout(), svcs)
				return nil
			}
			return fmt.Errorf("-o %q: want table or json", output)
		},
	}
	cmd.Flags().StringVar(&name, "name", "kestrel", "sim cluster name")
	cmd.Flags().StringVar(&node, "node", "node-1", "node whose agent to ask")
	cmd.Flags().StringVar(&socket, "socket", "", "agent API socket (instead of --name/--node)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

// printServices prints one row per backend, as `cilium service list` does.
func printServices(out io.Writer, svcs api.Services) {
	tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tFrontend\tService Type\tBackend\tService")
	for i, s := range svcs.Services {
		first := fmt.Sprintf("%d\t%s\t%s\t", i+1, s.Frontend, s.Type)
		if len(s.Backends) == 0 {
			fmt.Fprintf(tw, "%s(%s)\t%s\n", first, s.Action, s.Service)
			continue
		}
		for j, b := range s.Backends {
			state := "active"
			if b.Terminating {
				state = "terminating"
			}
			if j > 0 {
				first = "\t\t\t"
			}
			proto := s.Frontend[strings.LastIndex(s.Frontend, "/"):]
			fmt.Fprintf(tw, "%s%d => %s%s (%s)\t%s\n", first, j+1, b.Address, proto, state, s.Service)
		}
	}
	tw.Flush()
	for _, e := range svcs.Errors {
		fmt.Fprintf(out, "left out: %s\n", e)
	}
}
