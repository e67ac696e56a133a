package metrics

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// Row is one metric present in both results.
type Row struct {
	Name     string
	Unit     string
	Old, New Metric
	// Change is new/old - 1, signed so that a positive value is worse.
	Change float64
	// Noisy: a result's spread over its runs exceeds the threshold, so a
	// change of that size says nothing.
	Noisy bool
	// Regressed: worse by more than the threshold, and not noisy.
	Regressed bool
}

// Compare pairs the metrics present in both results, by name. A metric
// regresses when its median got worse by more than threshold (0.1 = 10%)
// while neither run's spread exceeds it; one whose spread does is noisy.
func Compare(old, new *Results, threshold float64) []Row {
	var rows []Row
	for _, n := range new.Metrics {
		o, ok := old.Get(n.Name)
		if !ok {
			continue
		}
		r := Row{Name: n.Name, Unit: n.Unit, Old: o, New: n}
		r.Change = n.Median/o.Median - 1
		if n.Better == Higher {
			r.Change = -r.Change
		}
		if o.Median == 0 {
			r.Change = math.Inf(1)
			if n.Median == 0 {
				r.Change = 0
			}
		}
		r.Noisy = o.Spread() > threshold || n.Spread() > threshold
		r.Regressed = !r.Noisy && r.Change > threshold
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	return rows
}

// Regressions names the rows that regressed.
func Regressions(rows []Row) []string {
	var out []string
	for _, r := range rows {
		if r.Regressed {
			out = append(out, r.Name)
		}
	}
	return out
}

// PrintTable writes the comparison as an aligned table.
func PrintTable(w io.Writer, rows []Row, threshold float64) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tunit\told\tnew\tchange\tspread old/new\tverdict")
	for _, r := range rows {
		verdict := "ok"
		switch {
		case r.Regressed:
			verdict = fmt.Sprintf("REGRESSED (> %.0f%%)", threshold*100)
		case r.Noisy:
			verdict = "noisy"
		case r.Change < -threshold:
			verdict = "improved"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%+.1f%%\t%.0f%%/%.0f%%\t%s\n", r.Name, r.Unit, num(r.Old.Median), num(r.New.Median),
			r.Change*100, r.Old.Spread()*100, r.New.Spread()*100, verdict)
	}
	tw.Flush()
}

func num(v float64) string {
	s := fmt.Sprintf("%.4g", v)
	if strings.Contains(s, "e") {
		return fmt.Sprintf("%.0f", v)
	}
	return s
}
