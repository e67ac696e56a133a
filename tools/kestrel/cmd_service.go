package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kestrelnet/kestrel/agent/api"
)

func init() {
	cmd := &cobra.Command{Use: "service", Short: "Inspect the agents' load-balancing state"}
	cmd.AddCommand(newServiceListCmd())
	rootCmd.AddCommand(cmd)
}

func newServiceListCmd() *cobra.Command {
	return agentListCmd("List each frontend and its backends as one agent sees them (like `cilium service list`)",
		func(ctx context.Context, c *api.Client) (api.Services, error) { return c.Services(ctx) }, printServices)
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
