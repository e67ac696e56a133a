package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/sim/cluster"
)

// agentListCmd is a `list` command that asks one agent's API for a listing
// (fetch) and prints it as a table (table, in the layout of the cilium
// command it mirrors) or as JSON: the flags of every such command
// (--name/--node or --socket, -o table|json).
func agentListCmd[T any](short string, fetch func(context.Context, *api.Client) (T, error), table func(io.Writer, T)) *cobra.Command {
	var name, node, socket, output string
	cmd := &cobra.Command{
		Use:   "list [--node NODE | --socket PATH] [-o table|json]",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			if socket == "" {
				socket = cluster.AgentSocket(name, node)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			v, err := fetch(ctx, api.NewClient(socket))
			if err != nil {
				return err // the client's error names the agent's socket
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			table(cmd.OutOrStdout(), v)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "kestrel", "sim cluster name")
	cmd.Flags().StringVar(&node, "node", "node-1", "node whose agent to ask")
	cmd.Flags().StringVar(&socket, "socket", "", "agent API socket (instead of --name/--node)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}
