package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kestrelnet/kestrel/bench/datapathcost"
	"github.com/kestrelnet/kestrel/bench/machine"
	"github.com/kestrelnet/kestrel/bench/metrics"
	"github.com/kestrelnet/kestrel/bench/report"
	"github.com/kestrelnet/kestrel/bench/simbench"
	"github.com/kestrelnet/kestrel/sim/controlplane"
)

func init() {
	benchCmd := &cobra.Command{Use: "bench", Short: "Kestrel against the real kube-proxy: run the benchmarks, compare two runs"}
	benchCmd.AddCommand(newBenchRunCmd(), newBenchCompareCmd(), newBenchReportCmd(), newBenchBaselineCmd(), newBenchSteadyClientCmd())
	rootCmd.AddCommand(benchCmd)
}

func newBenchRunCmd() *cobra.Command {
	var out string
	var quick, full, datapathOnly bool
	var runs int
	cmd := &cobra.Command{
		Use:   "run [--quick|--full] [--datapath-only] --out DIR",
		Short: "Measure every datapath in one run; write DIR/results.json, DIR/report.md and PNG plots",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			if quick && full {
				return fmt.Errorf("--quick and --full: choose one")
			}
			p := simbench.Quick
			if full {
				p = simbench.Full
			}
			if runs > 0 {
				p.Runs = runs
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			// The progress lines go to DIR/progress.txt too: where a run's
			// time went, step by step.
			progressFile, err := os.Create(filepath.Join(out, "progress.txt"))
			if err != nil {
				return err
			}
			defer progressFile.Close()
			start := time.Now()
			progress := func(s string) {
				line := fmt.Sprintf("[%6.1fs] %s\n", time.Since(start).Seconds(), s)
				fmt.Fprint(cmd.ErrOrStderr(), line)
				progressFile.WriteString(line)
			}
			tools := map[string][]string{"iptables": {"iptables-legacy", "--version"}, "iptables-nft": {"iptables-nft", "--version"}, "nft": {"nft", "--version"}}
			if !datapathOnly {
				tools["kube-proxy"] = []string{filepath.Join(controlplane.DefaultBinDir(), "kube-proxy"), "--version"}
			}
			res := &metrics.Results{Machine: machine.Describe(p.Name, tools)}
			dc, err := datapathcost.Metrics(p.DatapathSizes, p.Backends, p.Runs, p.DatapathSamples, progress)
			if err != nil {
				return err
			}
			res.Metrics = append(res.Metrics, dc...)
			if !datapathOnly {
				self, err := os.Executable()
				if err != nil {
					return err
				}
				lat, layout, err := simbench.Run(cmd.Context(), p, filepath.Dir(self), filepath.Join(out, "sim-logs"), progress)
				res.Machine.Layout = layout
				res.Metrics = append(res.Metrics, lat...)
				if err != nil {
					res.Machine.Load["end"] = machine.LoadAverage()
					res.Machine.Load["took"] = time.Since(start).Round(time.Second).String() + " (stopped: " + err.Error() + ")"
					// Keep what was measured: a partial result says where it stopped.
					res.Write(filepath.Join(out, "results.json"))
					report.Write(out, res)
					return err
				}
			}
			res.Machine.Load["end"] = machine.LoadAverage()
			res.Machine.Load["took"] = time.Since(start).Round(time.Second).String()
			if err := res.Write(filepath.Join(out, "results.json")); err != nil {
				return err
			}
			if err := report.Write(out, res); err != nil {
				return err
			}
			progress(fmt.Sprintf("wrote %s (results.json, report.md, plots)", out))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory for results.json, report.md and the plots")
	cmd.Flags().BoolVar(&quick, "quick", false, "1k and 10k services, fewer repetitions (the default)")
	cmd.Flags().BoolVar(&full, "full", false, "1k to 100k services, more repetitions")
	cmd.Flags().BoolVar(&datapathOnly, "datapath-only", false, "only the datapath cost (BPF_PROG_TEST_RUN): no sim cluster (what CI compares)")
	cmd.Flags().IntVar(&runs, "runs", 0, "repetitions per metric (default: the profile's)")
	return cmd
}

func newBenchCompareCmd() *cobra.Command {
	var threshold string
	cmd := &cobra.Command{
		Use:   "compare OLD.json NEW.json [--threshold 10%]",
		Short: "Table of every metric in both results; fails naming each one that regressed beyond the threshold",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			th, err := parsePercent(threshold)
			if err != nil {
				return fmt.Errorf("--threshold: %w", err)
			}
			old, err := metrics.Read(args[0])
			if err != nil {
				return err
			}
			new, err := metrics.Read(args[1])
			if err != nil {
				return err
			}
			rows := metrics.Compare(old, new, th)
			if len(rows) == 0 {
				return fmt.Errorf("%s and %s have no metric in common", args[0], args[1])
			}
			metrics.PrintTable(cmd.OutOrStdout(), rows, th)
			if bad := metrics.Regressions(rows); len(bad) > 0 {
				return fmt.Errorf("%d metric(s) regressed beyond %s: %s", len(bad), threshold, strings.Join(bad, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&threshold, "threshold", "10%", "largest change for the worse that passes (and the spread above which a metric is noisy)")
	return cmd
}

func parsePercent(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q: want a positive percentage such as 10%%", s)
	}
	return v / 100, nil
}

func newBenchReportCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report RESULTS.json --out DIR",
		Short: "Write the Markdown report and the plots of a results.json again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := metrics.Read(args[0])
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Dir(args[0])
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			return report.Write(out, res)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory for report.md and the plots (default: the results' own)")
	return cmd
}

func newBenchBaselineCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "baseline RESULTS.json OUT.json",
		Short: "Keep a results.json's ratios only (the figures that compare across machines), as a baseline for compare",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := metrics.Read(args[0])
			if err != nil {
				return err
			}
			kept := res.Metrics[:0]
			for _, m := range res.Metrics {
				if m.Unit == metrics.UnitRatio {
					kept = append(kept, m)
				}
			}
			if len(kept) == 0 {
				return fmt.Errorf("%s has no ratio metric", args[0])
			}
			res.Metrics = kept
			return res.Write(args[1])
		},
	}
}

func newBenchSteadyClientCmd() *cobra.Command {
	var nsPath, target, mode string
	var d time.Duration
	cmd := &cobra.Command{
		Use:    "steady-client --netns PATH --target ADDR:PORT --mode pingpong|stream --duration D",
		Short:  "One steady-state run from inside a pod's namespace (a process of the pod); prints JSON",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var res simbench.SteadyResult
			err := simbench.InNetns(nsPath, func() (err error) {
				res, err = simbench.SteadyClient(target, mode, d)
				return err
			})
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
		},
	}
	cmd.Flags().StringVar(&nsPath, "netns", "", "network namespace path to connect from")
	cmd.Flags().StringVar(&target, "target", "", "server address:port")
	cmd.Flags().StringVar(&mode, "mode", simbench.ModePingPong, "pingpong or stream")
	cmd.Flags().DurationVar(&d, "duration", time.Second, "how long to measure")
	cmd.MarkFlagRequired("netns")
	cmd.MarkFlagRequired("target")
	return cmd
}
