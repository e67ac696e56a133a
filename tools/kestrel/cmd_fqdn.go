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
	cmd := &cobra.Command{Use: "fqdn", Short: "Inspect the DNS proxy's view of names (toFQDNs)"}
	cache := &cobra.Command{Use: "cache", Short: "The names the DNS proxy saw answered"}
	cache.AddCommand(newFQDNCacheListCmd())
	cmd.AddCommand(cache)
	rootCmd.AddCommand(cmd)
}

func newFQDNCacheListCmd() *cobra.Command {
	var name, node, socket, output string
	cmd := &cobra.Command{
		Use:   "list [--node NODE | --socket PATH] [-o table|json]",
		Short: "List each answered name and address with its TTL and identity (like `cilium fqdn cache list`)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if socket == "" {
				socket = cluster.AgentSocket(name, node)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			c, err := api.NewClient(socket).FQDNCache(ctx)
			if err != nil {
				return err // the client's error names the agent's socket
			}
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(c)
			case "table":
				printFQDNCache(cmd.OutOrStdout(), c)
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

// printFQDNCache prints one row per address, with the columns of `cilium
// fqdn cache list` plus the identity toFQDNs gave the address.
func printFQDNCache(out io.Writer, c api.FQDNCache) {
	tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "Endpoint\tSource\tFQDN\tTTL\tExpirationTime\tIPs\tIdentity")
	for _, e := range c.Entries {
		id := "-"
		if e.Identity != 0 {
			id = fmt.Sprint(e.Identity)
		}
		fmt.Fprintf(tw, "%d\tlookup\t%s\t%d\t%s\t%s\t%s\n", e.Endpoint, e.Name, e.TTL, e.Expires.UTC().Format(time.RFC3339), e.IP, id)
	}
	tw.Flush()
}
