package engine

import (
	"fmt"

	"github.com/kestrelnet/kestrel/scenarios/format"
)

// reachability turns every cell of a matrix into a connect probe: "." expects
// allowed, "X" expects dropped (with the matrix's reason, if it gives one).
func (x *expander) reachability(r format.Reachability) ([]Probe, error) {
	var out []Probe
	for _, from := range r.Rows {
		for _, to := range r.Header {
			if r.IgnoreLoopback && from == to {
				continue
			}
			fp := format.Probe{
				Name:     fmt.Sprintf("%s->%s/%s/%s", from, to, r.Protocol, r.Port),
				From:     format.Peer{Pod: from, Line: r.Line},
				To:       format.Peer{Pod: to, Line: r.Line},
				Protocol: r.Protocol,
				Port:     r.Port,
				Exchange: "connect",
				Expect:   format.Expect{Verdict: "allowed"},
				Line:     r.Line,
			}
			if !r.Table[from][to] {
				fp.Expect = format.Expect{Verdict: "dropped", Reason: r.Reason}
			}
			ps, err := x.probes(fp)
			if err != nil {
				return nil, err
			}
			for i := range ps {
				ps[i].Independent = true
			}
			out = append(out, ps...)
		}
	}
	return out, nil
}
