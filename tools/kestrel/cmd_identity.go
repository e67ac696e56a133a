package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kestrelnet/kestrel/agent/api"
)

func init() {
	cmd := &cobra.Command{Use: "identity", Short: "Inspect the identities an agent numbered"}
	cmd.AddCommand(newIdentityListCmd())
	rootCmd.AddCommand(cmd)
}

func newIdentityListCmd() *cobra.Command {
	return agentListCmd("List each identity with its labels (like `cilium identity list`)",
		func(ctx context.Context, c *api.Client) ([]api.Identity, error) { return c.Identities(ctx) }, printIdentities)
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
