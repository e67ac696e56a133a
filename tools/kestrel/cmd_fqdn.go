package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kestrelnet/kestrel/agent/api"
)

func init() {
	cmd := &cobra.Command{Use: "fqdn", Short: "Inspect the DNS proxy's view of names (toFQDNs)"}
	cache := &cobra.Command{Use: "cache", Short: "The names the DNS proxy saw answered"}
	cache.AddCommand(newFQDNCacheListCmd())
	cmd.AddCommand(cache)
	rootCmd.AddCommand(cmd)
}

func newFQDNCacheListCmd() *cobra.Command {
	return agentListCmd("List each answered name and address with its TTL and identity (like `cilium fqdn cache list`)",
		func(ctx context.Context, c *api.Client) (api.FQDNCache, error) { return c.FQDNCache(ctx) }, printFQDNCache)
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
