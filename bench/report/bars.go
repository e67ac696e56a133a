package report

import (
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/kestrelnet/kestrel/bench/metrics"
)

// barPlot draws one bar per metric family<name><suffix> (median, with
// min-max bars), in the results' order. It reports whether there was
// anything to draw.
func barPlot(path, title string, res *metrics.Results, family, suffix string) (bool, error) {
	var names []string
	var vals plotter.Values
	var errs plotter.YErrors
	var unit string
	for _, m := range res.Metrics {
		if !strings.HasPrefix(m.Name, family) || !strings.HasSuffix(m.Name, suffix) {
			continue
		}
		names = append(names, strings.TrimSuffix(strings.TrimPrefix(m.Name, family), suffix))
		vals = append(vals, m.Median)
		errs = append(errs, struct{ Low, High float64 }{m.Median - m.Min, m.Max - m.Median})
		unit = m.Unit
	}
	if len(names) == 0 {
		return false, nil
	}
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = unit
	bars, err := plotter.NewBarChart(vals, vg.Points(28))
	if err != nil {
		return false, err
	}
	bars.Color = palette[0]
	xys := make(plotter.XYs, len(vals))
	for i, v := range vals {
		xys[i] = plotter.XY{X: float64(i), Y: v}
	}
	whiskers, err := plotter.NewYErrorBars(struct {
		plotter.XYer
		plotter.YErrorer
	}{xys, errs})
	if err != nil {
		return false, err
	}
	p.Add(bars, whiskers)
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = 0.5
	// Rotated names end at their bar, so the longest stays on the canvas.
	p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XRight, draw.YCenter
	return true, p.Save(9*vg.Inch, 5*vg.Inch, path)
}
