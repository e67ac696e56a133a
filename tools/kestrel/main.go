// Command kestrel is the Kestrel CLI: policy tooling and the scenario engine.
package main

import (
	"os"

	"github.com/spf13/cobra"
)

var rootCmd = &cobra.Command{
	Use:           "kestrel",
	Short:         "Kestrel: eBPF Kubernetes networking, and the harness that proves it",
	SilenceUsage:  true,
	SilenceErrors: false,
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		os.Exit(1)
	}
}
