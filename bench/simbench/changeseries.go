package simbench

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/kestrelnet/kestrel/bench/metrics"
)

// changeStreak is how many answers in a row from the new endpoint mean a
// datapath has applied a change (and no longer sends to the old one).
const changeStreak = 30

// errNotReachable is a change a datapath had not applied within the limit:
// a figure to record, not a reason to stop the run.
type errNotReachable struct{ msg string }

func (e errNotReachable) Error() string { return e.msg }

// changeCluster is what an endpoint-change series does to the cluster.
type changeCluster interface {
	// setOnly makes echo-b the probed service's only endpoint and returns
	// when the update call returned.
	setOnly(b int) (time.Time, error)
	// until waits until d answers through the VIP from echo-b alone and
	// returns how long after since the first answer of that run came; an
	// errNotReachable when none came before deadline.
	until(d datapath, b int, since, deadline time.Time) (time.Duration, error)
	// leaveOut stops d until the next size.
	leaveOut(d datapath) error
}

// changeSeries measures each datapath's endpoint changes in turn, runs of
// them, each timed from the update to the new endpoint's first answer; the
// next change waits until changeStreak answers in a row come from it, and
// the next datapath's until every other datapath has the last state too
// (each processes every change, on the same cores). A known start first:
// echo-0 alone, which every datapath must reach; with ten endpoints a
// change to one of them would be "reachable" by chance.
//
// limit bounds every wait, from the update that is waited for. A datapath
// that misses it is recorded as endpoint-change/<datapath>/services=n/
// not-reachable-after (the limit, in seconds) instead of api-to-reachable,
// unless its own series was already measured, and is left out (stopped) for
// the rest of the series: the others are measured without waiting for it.
func changeSeries(c changeCluster, ready []datapath, n, runs int, limit time.Duration, progress func(string)) ([]metrics.Metric, error) {
	var out []metrics.Metric
	left := map[string]bool{}     // left out
	measured := map[string]bool{} // own series recorded
	missed := func(d datapath, err error) error {
		var nr errNotReachable
		if !errors.As(err, &nr) {
			return fmt.Errorf("%s: %w", d.Name, err)
		}
		left[d.Name] = true
		if !measured[d.Name] {
			out = append(out, metrics.Summarize(fmt.Sprintf("endpoint-change/%s/services=%d/not-reachable-after", d.Name, n), "s", metrics.Lower, []float64{limit.Seconds()}))
		}
		progress(fmt.Sprintf("%d services: %s: %v: left out of the endpoint changes at this size", n, d.Name, err))
		return c.leaveOut(d)
	}
	// converge waits for every datapath still in to reach echo-current,
	// written at since.
	converge := func(current int, since time.Time) error {
		for _, d := range ready {
			if left[d.Name] {
				continue
			}
			if _, err := c.until(d, current, since, since.Add(limit)); err != nil {
				if err := missed(d, err); err != nil {
					return err
				}
			}
		}
		return nil
	}
	current := 0
	written, err := c.setOnly(current)
	if err != nil {
		return out, err
	}
	if err := converge(current, written); err != nil {
		return out, err
	}
	for _, d := range ready {
		if left[d.Name] {
			continue
		}
		progress(fmt.Sprintf("%d services: %s, endpoint change to reachable (%d changes)", n, d.Name, runs))
		var took []float64
		for range runs {
			// The old endpoint is the only one before the change, so the
			// first answer from the new one means the change is applied.
			target := 1 - current
			if written, err = c.setOnly(target); err != nil {
				return out, err
			}
			current = target
			first, err := c.until(d, target, written, written.Add(limit))
			if err != nil {
				if len(took) > 0 {
					progress(fmt.Sprintf("%d services: %s: the changes before took %v ms", n, d.Name, took))
				}
				if err := missed(d, err); err != nil {
					return out, err
				}
				break
			}
			took = append(took, first.Seconds()*1e3)
		}
		if !left[d.Name] {
			measured[d.Name] = true
			sort.Float64s(took)
			out = append(out, metrics.Summarize(fmt.Sprintf("endpoint-change/%s/services=%d/api-to-reachable", d.Name, n), "ms", metrics.Lower, took))
		}
		// Every datapath has the last state before the next one is timed.
		if err := converge(current, written); err != nil {
			return out, err
		}
	}
	return out, nil
}
