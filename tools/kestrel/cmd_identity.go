package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/sim/cluster"
)

func init() {
	cmd := &cobra.Command{Use: "identity", Short: "Inspect the identities an agent numbered"}
	cmd.AddCommand(newIdentityListCmd())
	rootCmd.AddCommand(cmd)
}

func newIdentityListCmd() *cobra.Command {
	var name, node, socket, output string
	cmd := &cobra.Command{
		Use:   "list [--node NODE | --socket PATH] [-o table|json]",
		Short: "List each identity with its labels (like `cilium identity list`)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if socket == "" {
				socket = cluster.AgentSocket(name, node)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			ids, err := api.NewClient(socket).Identities(ctx)
			if err != nil {
				return err // the client's error names the agent's socket
			}
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(ids)
			case "table":
				printIdentities(cmd.OutOrStdout(), ids)
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

// printIdentities prints one row per identity, its labels one per line
// under it, as `cilium identity list` does.
func printIdentities(out io.Writer, ids []api.Identity) {
	tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tLABELS")
	for _, id := range ids {
		ls := id.Labels
		if len(ls) == 0 {
			ls = []string{"-"}
		}
		fmt.Fprintf(tw, "%d\t%s\n", id.ID, ls[0])
		for _, l := range ls[1:] {
			fmt.Fprintf(tw, "\t%s\n", l)
		}
	}
	tw.Flush()
}
