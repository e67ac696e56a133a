// Package report turns a results.json into a Markdown report and PNG plots
// (gonum/plot).
package report

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/kestrelnet/kestrel/bench/metrics"
)

// Write makes dir/report.md and the plots of res.
func Write(dir string, res *metrics.Results) error {
	var plots []string
	for _, pl := range []struct {
		file, title, suffix string
		family, key         string
	}{
		{"latency-p50.png", "TCP connect through a service VIP (middle service), p50", "/middle/connect-p50", "latency/", "services"},
		{"latency-p99.png", "TCP connect through a service VIP (middle service), p99", "/middle/connect-p99", "latency/", "services"},
		{"bystander-p50.png", "Direct pod connect with N services present, p50", "/direct/connect-p50", "latency/", "services"},
		{"datapath-cost.png", "Datapath cost of a new flow to a service (BPF_PROG_TEST_RUN)", "/service-new-ns-per-pkt", "datapath-cost/", "services"},
		{"policy-p50.png", "Pod connect allowed by the last of N egress policy rules, p50", "/allowed/connect-p50", "policy/", "rules"},
	} {
		ok, err := linePlot(filepath.Join(dir, pl.file), pl.title, res, pl.family, pl.key, pl.suffix)
		if err != nil {
			return fmt.Errorf("%s: %w", pl.file, err)
		}
		if ok {
			plots = append(plots, pl.file)
		}
	}
	for _, bp := range []struct{ file, title, suffix string }{
		{"steady-stream.png", "Single-stream throughput through a service (bare veth: the ceiling)", "/stream-gbit-per-s"},
		{"steady-pingpong.png", "1-byte ping-pong rate through a service (bare veth: the ceiling)", "/pingpong-per-s"},
	} {
		ok, err := barPlot(filepath.Join(dir, bp.file), bp.title, res, "steady/", bp.suffix)
		if err != nil {
			return fmt.Errorf("%s: %w", bp.file, err)
		}
		if ok {
			plots = append(plots, bp.file)
		}
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(markdown(res, plots)), 0o644)
}

// series groups metrics family/<datapath>/<key>=<N><suffix> by datapath:
// N to the metric.
func series(res *metrics.Results, family, key, suffix string) map[string]map[int]metrics.Metric {
	out := map[string]map[int]metrics.Metric{}
	for _, m := range res.Metrics {
		if !strings.HasPrefix(m.Name, family) || !strings.HasSuffix(m.Name, suffix) {
			continue
		}
		mid := strings.TrimSuffix(strings.TrimPrefix(m.Name, family), suffix)
		dp, size, ok := strings.Cut(mid, "/"+key+"=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(size)
		if err != nil {
			continue
		}
		if out[dp] == nil {
			out[dp] = map[int]metrics.Metric{}
		}
		out[dp][n] = m
	}
	return out
}

var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
}

// linePlot draws median (with min-max bars) against the number of services
// (or rules) on a log scale, one line per datapath. The 0 points have no
// place on a log axis and are left out. It reports whether there was
// anything to draw.
func linePlot(path, title string, res *metrics.Results, family, key, suffix string) (bool, error) {
	s := series(res, family, key, suffix)
	dps := make([]string, 0, len(s))
	for dp := range s {
		dps = append(dps, dp)
	}
	sort.Strings(dps)
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = key
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	// Linear from 0: the values of one plot often lie within a factor of
	// two, where a log axis would show no tick at all.
	p.Y.Min = 0
	p.Legend.Top, p.Legend.Left = true, true
	drawn := false
	for i, dp := range dps {
		var xys plotter.XYs
		var errs plotter.YErrors
		var unit string
		sizes := make([]int, 0, len(s[dp]))
		for n := range s[dp] {
			if n > 0 {
				sizes = append(sizes, n)
			}
		}
		sort.Ints(sizes)
		for _, n := range sizes {
			m := s[dp][n]
			if m.Median <= 0 {
				continue
			}
			unit = m.Unit
			xys = append(xys, plotter.XY{X: float64(n), Y: m.Median})
			errs = append(errs, struct{ Low, High float64 }{m.Median - m.Min, m.Max - m.Median})
		}
		if len(xys) == 0 {
			continue
		}
		p.Y.Label.Text = unit
		p.Y.Max = max(p.Y.Max, slicesMax(xys, errs))
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return false, err
		}
		c := palette[i%len(palette)]
		line.Color, points.Color = c, c
		points.Shape = draw.CircleGlyph{}
		bars, err := plotter.NewYErrorBars(struct {
			plotter.XYer
			plotter.YErrorer
		}{xys, errs})
		if err != nil {
			return false, err
		}
		bars.Color = c
		p.Add(line, points, bars)
		p.Legend.Add(dp, line, points)
		drawn = true
	}
	if !drawn {
		return false, nil
	}
	return true, p.Save(8*vg.Inch, 5*vg.Inch, path)
}

func markdown(res *metrics.Results, plots []string) string {
	var b strings.Builder
	m := res.Machine
	fmt.Fprintf(&b, "# Kestrel bench (%s profile)\n\n", m.Profile)
	fmt.Fprintf(&b, "- started: %s\n- kernel: %s\n- CPU: %s (%d CPUs)\n", m.Started, m.Kernel, m.CPU, m.CPUs)
	if m.Layout != "" {
		fmt.Fprintf(&b, "- layout: %s\n", m.Layout)
	}
	if len(m.Load) > 0 {
		fmt.Fprintf(&b, "- load average (1 5 15 min): start %s, end %s; took %s\n", m.Load["start"], m.Load["end"], m.Load["took"])
	}
	keys := make([]string, 0, len(m.Versions))
	for k := range m.Versions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "- %s: %s\n", k, m.Versions[k])
	}
	for _, p := range plots {
		fmt.Fprintf(&b, "\n![%s](%s)\n", p, p)
	}
	fmt.Fprintf(&b, "\n| metric | unit | median | min | max | runs | spread |\n|---|---|---|---|---|---|---|\n")
	for _, x := range res.Metrics {
		fmt.Fprintf(&b, "| %s | %s | %.4g | %.4g | %.4g | %d | %.0f%% |\n", x.Name, x.Unit, x.Median, x.Min, x.Max, x.Runs, x.Spread()*100)
	}
	return b.String()
}

func slicesMax(xys plotter.XYs, errs plotter.YErrors) float64 {
	m := 0.0
	for i := range xys {
		m = max(m, xys[i].Y+errs[i].High)
	}
	return m * 1.05
}
