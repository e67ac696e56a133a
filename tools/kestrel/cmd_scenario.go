package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kestrelnet/kestrel/scenarios/clustermode"
	"github.com/kestrelnet/kestrel/scenarios/engine"
	"github.com/kestrelnet/kestrel/scenarios/kindmode"
	"github.com/kestrelnet/kestrel/scenarios/sim"
	"github.com/kestrelnet/kestrel/scenarios/unit"
	"github.com/kestrelnet/kestrel/sim/cluster"
	"github.com/kestrelnet/kestrel/sim/controlplane"
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
		modes, junit, filter, cluster string
		verbose, up, tables           bool
		nodes                         int
		co                            clustermode.Options
	)
	cmd := &cobra.Command{
		Use:   "run [--mode unit|sim|kind|cluster|unit,sim] [--junit FILE] [--filter REGEX] PATH...",
		Short: "Run scenario files and directories (recursively, *.yaml)",
		Long: "Run scenario files and directories. With several modes (--mode unit,sim) every mode " +
			"runs the same files, and each probe whose verdict differs between modes is listed. " +
			"--mode cluster runs against any cluster (--kubeconfig) through its API alone, and prints " +
			"the verdict table of every reachability matrix and each cell that differs from the expectation.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var re *regexp.Regexp
			if filter != "" {
				var err error
				if re, err = regexp.Compile(filter); err != nil {
					return fmt.Errorf("--filter: %w", err)
				}
			}
			files, err := engine.Load(args...)
			if err != nil {
				return err
			}
			list := strings.Split(modes, ",")
			if up && slices.Contains(list, "sim") {
				down, err := simUpForRun(cmd, cluster, nodes)
				if err != nil {
					return err
				}
				defer down()
			}
			if up && slices.Contains(list, "kind") {
				down, err := kindUpForRun(cmd, cluster, nodes)
				if err != nil {
					return err
				}
				defer down()
			}
			out := cmd.OutOrStdout()
			var reports []*engine.Report
			ok := true
			for _, mode := range list {
				if len(list) > 1 {
					fmt.Fprintf(out, "== mode %s\n", mode)
				}
				rep, note, err := runMode(mode, cluster, co, files, re)
				if rep == nil {
					return err
				}
				if note != "" {
					fmt.Fprintln(out, note)
				}
				if mode == "cluster" || tables {
					rep.WriteVerdictTables(out)
				}
				rep.WriteText(out, verbose)
				if err != nil {
					return err // the report stands; its cleanup failed
				}
				if junit != "" {
					if err := writeJUnit(junitPath(junit, mode, len(list)), rep); err != nil {
						return err
					}
				}
				ok = ok && rep.OK()
				reports = append(reports, rep)
			}
			for i := 1; i < len(reports); i++ {
				diffs := engine.DiffVerdicts(reports[0], reports[i])
				engine.WriteDiff(out, reports[0], reports[i], diffs)
				// Drop reasons both runners read must agree too: a
				// probe dropped for another reason in another mode is
				// another datapath decision, even with the same verdict.
				n, reasons := engine.DiffReasons(reports[0], reports[i])
				engine.WriteReasonDiff(out, reports[0], reports[i], n, reasons)
				ok = ok && len(diffs) == 0 && len(reasons) == 0
			}
			if !ok {
				if slices.Contains(list, "kind") {
					collectKindLogs(cmd, cluster)
				}
				return errors.New("scenarios failed")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&modes, "mode", "unit", "runner(s): unit (BPF_PROG_TEST_RUN), sim, kind, cluster (any cluster, --kubeconfig), or a comma-separated list to compare")
	cmd.Flags().StringVar(&co.Kubeconfig, "kubeconfig", "", "with cluster: the cluster's kubeconfig")
	cmd.Flags().StringVar(&co.WorkloadImage, "workload-image", "", "with cluster: the image scenario pods run, with the kestrel binary (default: kestrel/workload as `kestrel kind image` builds it, built if missing; the cluster's nodes must be able to pull or have it)")
	cmd.Flags().DurationVar(&co.Settle, "settle", 2*time.Second, "with cluster: how long after applying a step's objects its probes start")
	cmd.Flags().BoolVar(&tables, "tables", false, "print the verdict table of every reachability matrix (always with cluster)")
	cmd.Flags().StringVar(&cluster, "cluster", "kestrel", "with sim or kind: the cluster's name")
	cmd.Flags().BoolVar(&up, "up", false, "with sim or kind: bring the cluster up first if it is not, and down afterwards if it was not up")
	cmd.Flags().IntVar(&nodes, "nodes", 2, "with --up: nodes of a cluster brought up for the run")
	cmd.Flags().StringVar(&junit, "junit", "", "also write a JUnit XML report to FILE (FILE-<mode>.xml with several modes)")
	cmd.Flags().StringVar(&filter, "filter", "", `run only probes whose "scenario/probe" name matches REGEX`)
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print passing and skipped probes too")
	return cmd
}

// runMode runs the files in one mode; note is what the runner says of how it
// sees the datapath (cluster mode: whether Kestrel's agents are read).
func runMode(mode, cluster string, co clustermode.Options, files []engine.File, re *regexp.Regexp) (rep *engine.Report, note string, err error) {
	runner, err := newRunner(mode, cluster, co)
	if err != nil {
		return nil, "", err
	}
	if n, ok := runner.(interface{ Note() string }); ok {
		note = n.Note()
	}
	if c, ok := runner.(io.Closer); ok {
		// A cleanup that fails leaves the run's objects in the cluster:
		// the next run would meet them, so it is an error, not a footnote.
		defer func() {
			if cerr := c.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("%s: removing the run's objects: %w", mode, cerr)
			}
		}()
	}
	return engine.Run(context.Background(), runner, files, engine.Options{Filter: re}), note, nil
}

// simUpForRun brings the sim cluster up unless it already answers; the
// returned func takes down only a cluster this run brought up.
func simUpForRun(cmd *cobra.Command, name string, nodes int) (func(), error) {
	if controlplane.Status(context.Background(), controlplane.DefaultStateDir(name)).Ready {
		return func() {}, nil
	}
	if err := checkNodeCount(nodes); err != nil {
		return nil, err
	}
	info, err := cluster.Up(context.Background(), cluster.Options{Name: name, Nodes: nodes})
	if err != nil {
		return nil, fmt.Errorf("--up: %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "sim cluster %q up with %s in %s\n", name, nodeCount(info.Nodes), info.Took.Round(1e7))
	return func() {
		if err := cluster.Down(name); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "sim down: %v\n", err)
		}
	}, nil
}

func junitPath(path, mode string, modes int) string {
	if modes == 1 {
		return path
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + mode + ext
}

func writeJUnit(path string, rep *engine.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := rep.WriteJUnit(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

func newRunner(mode, cluster string, co clustermode.Options) (engine.Runner, error) {
	switch mode {
	case "sim":
		return sim.NewRunner(sim.Options{Name: cluster})
	case "unit":
		return unit.NewRunner()
	case "kind":
		return kindmode.NewRunner(context.Background(), cluster)
	case "cluster":
		if co.WorkloadImage == "" {
			img, err := defaultWorkloadImage()
			if err != nil {
				return nil, fmt.Errorf("--workload-image: %w", err)
			}
			co.WorkloadImage = img
		}
		return clustermode.NewRunner(context.Background(), co)
	}
	return nil, fmt.Errorf("--mode %q: unknown mode (unit, sim, kind or cluster)", mode)
}
