package httpproxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/kestrelnet/kestrel/agent/policy"
)

// loadResult is one load run: requests per second and latency percentiles.
type loadResult struct {
	requests int
	rps      float64
	p50, p99 time.Duration
}

// load sends GET /public from the pod with conc keep-alive connections for
// d, and measures each request.
func load(t *testing.T, r *rig, conc int, d time.Duration) loadResult {
	podNS := r.n.Pod
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			orig, err := netns.Get()
			if err != nil {
				return nil, err
			}
			defer orig.Close()
			if err := netns.Set(podNS); err != nil {
				return nil, err
			}
			defer netns.Set(orig)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	url := "http://" + netip.AddrPortFrom(r.server, 80).String() + "/public"
	var mu sync.Mutex
	var lat []time.Duration
	var failures int
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			for time.Now().Before(deadline) {
				t0 := time.Now()
				resp, err := c.Get(url)
				if err != nil {
					bad++
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			failures += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failures > 0 || len(lat) == 0 {
		t.Fatalf("%d requests failed, %d succeeded", failures, len(lat))
	}
	slices.Sort(lat)
	return loadResult{requests: len(lat), rps: float64(len(lat)) / elapsed.Seconds(),
		p50: lat[len(lat)/2], p99: lat[len(lat)*99/100]}
}

// TestHTTPProxyLoad measures HTTP through the proxy (an L7 rule on the
// port) against the same load with the port simply allowed, both through
// the attached datapath, and reports requests per second, p50 and p99 and
// the ratio. It runs when KESTREL_L7_LOAD is set (seconds per run, e.g. 5);
// bench/README.md quotes its figures.
func TestHTTPProxyLoad(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("KESTREL_L7_LOAD"))
	if secs <= 0 {
		t.Skip("set KESTREL_L7_LOAD=<seconds per run> to measure")
	}
	conc := 16
	if v, err := strconv.Atoi(os.Getenv("KESTREL_L7_LOAD_CONC")); err == nil && v > 0 {
		conc = v
	}
	r := newRig(t, []policy.HTTPRule{{Method: "GET", Path: "/public"}})
	results := map[bool]loadResult{}
	for _, l7 := range []bool{false, true, false, true} { // interleaved, the second of each kept
		r.redirect(t, l7)
		results[l7] = load(t, r, conc, time.Duration(secs)*time.Second)
	}
	l4, l7 := results[false], results[true]
	line := func(name string, x loadResult) string {
		return fmt.Sprintf("%-22s %8.0f req/s  p50 %7s  p99 %7s  (%d requests, %d connections)", name, x.rps,
			x.p50.Round(time.Microsecond), x.p99.Round(time.Microsecond), x.requests, conc)
	}
	t.Log("\n" + line("no L7 rule (allowed)", l4) + "\n" + line("HTTP proxy (L7 rule)", l7) +
		fmt.Sprintf("\nproxied/direct: %.2f of the requests per second, p99 x%.2f", l7.rps/l4.rps, float64(l7.p99)/float64(l4.p99)))
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.records) < l7.requests {
		t.Fatalf("the proxy decided %d requests, fewer than the %d that went through it", len(r.records), l7.requests)
	}
}
