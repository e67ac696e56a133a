package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kestrelnet/kestrel/agent/preflight"
)

func init() {
	var netns, replacement string
	cmd := &cobra.Command{
		Use:   "preflight [--netns NAME] [--kube-proxy-replacement true|false]",
		Short: "Find kube-proxy's rules on a node (iptables nft and legacy, IPv4 and IPv6, nftables)",
		Long: "Kestrel's kube-proxy replacement must not share a node with kube-proxy's rules: they\n" +
			"would translate or drop service traffic first. With --kube-proxy-replacement=true\n" +
			"(Cilium's strict mode) any rule found is an error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			strict := false
			switch replacement {
			case "true", "strict":
				strict = true
			case "false", "partial", "":
			default:
				return fmt.Errorf("--kube-proxy-replacement %q: want true or false", replacement)
			}
			run := preflight.Runner(preflight.Exec)
			if netns != "" {
				run = preflight.InNetns(netns)
			}
			found, errs := preflight.Scan(run, preflight.Have)
			out := cmd.OutOrStdout()
			for _, f := range found {
				fmt.Fprintf(out, "kube-proxy rules: %s\n", f)
			}
			if err := errors.Join(errs...); err != nil {
				return fmt.Errorf("could not look everywhere: %w", err)
			}
			if len(found) == 0 {
				fmt.Fprintln(out, "no kube-proxy rules found")
				return nil
			}
			if strict {
				return fmt.Errorf("%d kube-proxy rule sets found: kube-proxy replacement refuses to run beside them; stop kube-proxy and remove its rules (kube-proxy --cleanup) first", len(found))
			}
			fmt.Fprintln(out, "warning: kube-proxy rules are present; they take service traffic before Kestrel does")
			return nil
		},
	}
	cmd.Flags().StringVar(&netns, "netns", "", "look inside this named network namespace (a sim node's, for example)")
	cmd.Flags().StringVar(&replacement, "kube-proxy-replacement", "true", "true: refuse when kube-proxy's rules are found; false: only warn")
	rootCmd.AddCommand(cmd)
}
