package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/spf13/cobra"

	"github.com/kestrelnet/kestrel/scenarios/engine"
	"github.com/kestrelnet/kestrel/scenarios/sim"
	"github.com/kestrelnet/kestrel/scenarios/unit"
)

func init() {
	scenarioCmd := &cobra.Command{
		Use:   "scenario",
		Short: "Run scenario suites against a datapath",
	}
	scenarioCmd.AddCommand(newScenarioRunCmd())
	rootCmd.AddCommand(scenarioCmd)
}

func newScenarioRunCmd() *cobra.Command {
	var (
		mode, junit, filter, cluster string
		verbose                      bool
	)
	cmd := &cobra.Command{
		Use:   "run [--mode unit|sim|kind] [--junit FILE] [--filter REGEX] PATH...",
		Short: "Run scenario files and directories (recursively, *.yaml)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var re *regexp.Regexp
			if filter != "" {
				var err error
				if re, err = regexp.Compile(filter); err != nil {
					return fmt.Errorf("--filter: %w", err)
				}
			}
			runner, err := newRunner(mode, cluster)
			if err != nil {
				return err
			}
			if c, ok := runner.(io.Closer); ok {
				defer c.Close()
			}
			files, err := engine.Load(args...)
			if err != nil {
				return err
			}
			rep := engine.Run(context.Background(), runner, files, engine.Options{Filter: re})
			rep.WriteText(cmd.OutOrStdout(), verbose)
			if junit != "" {
				f, err := os.Create(junit)
				if err != nil {
					return err
				}
				if err := rep.WriteJUnit(f); err != nil {
					f.Close()
					return fmt.Errorf("writing %s: %w", junit, err)
				}
				if err := f.Close(); err != nil {
					return err
				}
			}
			if !rep.OK() {
				return errors.New("scenarios failed")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&mode, "mode", "unit", "runner: unit (BPF_PROG_TEST_RUN), sim or kind")
	cmd.Flags().StringVar(&cluster, "cluster", "kestrel", "with --mode sim: the sim cluster's name")
	cmd.Flags().StringVar(&junit, "junit", "", "also write a JUnit XML report to FILE")
	cmd.Flags().StringVar(&filter, "filter", "", `run only probes whose "scenario/probe" name matches REGEX`)
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print passing and skipped probes too")
	return cmd
}

func newRunner(mode, cluster string) (engine.Runner, error) {
	switch mode {
	case "sim":
		return sim.NewRunner(sim.Options{Name: cluster})
	case "unit":
		return unit.NewRunner()
	case "kind":
		return nil, fmt.Errorf("--mode %s: not available yet (unit and sim run today)", mode)
	}
	return nil, fmt.Errorf("--mode %q: unknown mode (unit, sim or kind)", mode)
}
