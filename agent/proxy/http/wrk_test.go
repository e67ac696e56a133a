package httpproxy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/kestrelnet/kestrel/agent/policy"
)

// wrkResult is one wrk run: requests per second and its p99 latency.
type wrkResult struct {
	rps      float64
	p99      time.Duration
	requests int
}

var (
	wrkRPS      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkP99      = regexp.MustCompile(`(?m)^\s+99%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkRequests = regexp.MustCompile(`(\d+) requests in`)
	wrkBad      = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)|Socket errors: .*`)
)

// runWrk runs Debian's wrk from the pod's namespace: the process is started
// from a thread switched into that namespace, so it lives there.
func runWrk(t *testing.T, r *rig, conns int, d time.Duration) wrkResult {
	url := fmt.Sprintf("http://%s:80/public", r.server)
	cmd := exec.Command("wrk", "-t2", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", int(d.Seconds())), "--latency", url)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := func() error {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		if err := netns.Set(r.n.Pod); err != nil {
			return err
		}
		defer netns.Set(orig)
		return cmd.Start()
	}()
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out.String())
	}
	s := out.String()
	if m := wrkBad.FindString(s); m != "" {
		t.Fatalf("wrk saw failures (%s):\n%s", m, s)
	}
	rps, p99, n := wrkRPS.FindStringSubmatch(s), wrkP99.FindStringSubmatch(s), wrkRequests.FindStringSubmatch(s)
	if rps == nil || p99 == nil || n == nil {
		t.Fatalf("unreadable wrk output:\n%s", s)
	}
	res := wrkResult{}
	res.rps, _ = strconv.ParseFloat(rps[1], 64)
	res.requests, _ = strconv.Atoi(n[1])
	v, _ := strconv.ParseFloat(p99[1], 64)
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[p99[2]]
	res.p99 = time.Duration(v * float64(unit))
	return res
}

// TestHTTPProxyLoadWrk measures HTTP with wrk (Debian's) from the pod
// through the attached datapath: to the HTTP proxy (an L7 rule on the
// port) against the same load with the port simply allowed, runs
// interleaved, and reports the median requests per second and p99 of each
// and their ratio. KESTREL_L7_WRK=<seconds per run> turns it on
// (KESTREL_L7_WRK_RUNS, default 5; KESTREL_L7_WRK_CONNS, default 32);
// bench/README.md quotes its figures.
func TestHTTPProxyLoadWrk(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("KESTREL_L7_WRK"))
	if secs <= 0 {
		t.Skip("set KESTREL_L7_WRK=<seconds per run> to measure")
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Fatal("wrk is not installed (apt-get install wrk)")
	}
	runs, conns := envInt("KESTREL_L7_WRK_RUNS", 5), envInt("KESTREL_L7_WRK_CONNS", 32)
	r := newRig(t, []policy.HTTPRule{{Method: "GET", Path: "/public"}})
	results := map[bool][]wrkResult{}
	for range runs {
		for _, l7 := range []bool{false, true} {
			r.redirect(t, l7)
			r.mu.Lock()
			before := len(r.records)
			r.mu.Unlock()
			res := runWrk(t, r, conns, time.Duration(secs)*time.Second)
			r.mu.Lock()
			decided := len(r.records) - before
			r.mu.Unlock()
			// The proxy decided every request of an L7 run, and none of the
			// others: a decision is recorded once its answer is relayed, so up
			// to one request a connection may land on either side of a run.
			if l7 && decided+conns < res.requests || !l7 && decided > conns {
				t.Fatalf("l7=%v: the proxy decided %d requests, wrk completed %d", l7, decided, res.requests)
			}
			results[l7] = append(results[l7], res)
		}
	}
	l4, l7 := median(results[false]), median(results[true])
	var b strings.Builder
	fmt.Fprintf(&b, "wrk -t2 -c%d -d%ds, median of %d interleaved runs each\n", conns, secs, runs)
	for _, x := range []struct {
		name string
		r    wrkResult
		all  []wrkResult
	}{{"no L7 rule (allowed)", l4, results[false]}, {"HTTP proxy (L7 rule)", l7, results[true]}} {
		fmt.Fprintf(&b, "%-22s %8.0f req/s  p99 %8s   runs:", x.name, x.r.rps, x.r.p99.Round(time.Microsecond))
		for _, y := range x.all {
			fmt.Fprintf(&b, " %.0f/%s", y.rps, y.p99.Round(time.Microsecond))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "proxied/direct: %.2f of the requests per second, p99 x%.2f", l7.rps/l4.rps, float64(l7.p99)/float64(l4.p99))
	t.Log("\n" + b.String())
}

// median takes the median requests per second and, separately, the
// median p99 of the runs.
func median(rs []wrkResult) wrkResult {
	rps := make([]float64, len(rs))
	p99 := make([]time.Duration, len(rs))
	for i, r := range rs {
		rps[i], p99[i] = r.rps, r.p99
	}
	slices.Sort(rps)
	slices.Sort(p99)
	return wrkResult{rps: rps[len(rs)/2], p99: p99[len(rs)/2]}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
