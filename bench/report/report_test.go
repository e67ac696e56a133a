package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kestrelnet/kestrel/bench/metrics"
)

func TestWriteMakesThePlotsAndTheReport(t *testing.T) {
	res := &metrics.Results{Machine: metrics.Machine{Kernel: "6.x", CPU: "test", Profile: "quick", Versions: map[string]string{"go": "go1"}}}
	for _, dp := range []string{"kestrel", "kube-proxy-nftables"} {
		for _, n := range []string{"0", "1000", "10000"} {
			for _, probe := range []string{"middle", "direct"} {
				for _, q := range []string{"p50", "p99"} {
					res.Metrics = append(res.Metrics, metrics.Summarize("latency/"+dp+"/services="+n+"/"+probe+"/connect-"+q, "us", metrics.Lower, []float64{100, 110, 120}))
				}
			}
		}
	}
	res.Metrics = append(res.Metrics, metrics.Summarize("datapath-cost/kestrel/services=1000/service-new-ns-per-pkt", "ns", metrics.Lower, []float64{3000, 3100}))
	for _, n := range []string{"0", "10", "1000"} {
		res.Metrics = append(res.Metrics, metrics.Summarize("policy/kestrel-per-packet/rules="+n+"/allowed/connect-p50", "us", metrics.Lower, []float64{80, 90}))
	}
	for _, target := range []string{"bare-veth", "kestrel-socket-lb"} {
		res.Metrics = append(res.Metrics, metrics.Summarize("steady/"+target+"/stream-gbit-per-s", "Gbit/s", metrics.Higher, []float64{20, 25}),
			metrics.Summarize("steady/"+target+"/pingpong-per-s", "1/s", metrics.Higher, []float64{20000, 21000}))
	}
	dir := t.TempDir()
	if err := Write(dir, res); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"latency-p50.png", "latency-p99.png", "bystander-p50.png", "datapath-cost.png", "steady-stream.png", "steady-pingpong.png", "policy-p50.png"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Fatalf("%s is not a PNG", f)
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"![latency-p50.png](latency-p50.png)", "![steady-stream.png](steady-stream.png)", "latency/kube-proxy-nftables/services=10000/middle/connect-p99", "kernel: 6.x"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
}
