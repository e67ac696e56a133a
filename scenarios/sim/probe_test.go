package sim

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/kestrelnet/kestrel/scenarios/engine"
)

func TestProbesThatWouldLeaveTheSimAreSkippedWithAReason(t *testing.T) {
	r := &Runner{name: "kestrel", live: newLiveState()}
	pod := engine.Peer{Node: "node-1", IP: netip.MustParseAddr("172.18.0.2")}
	nodes := nodeMap{"node-1": 1}
	cases := []struct {
		name string
		p    engine.Probe
		want string
	}{
		{"a world address is never sent to", engine.Probe{From: pod, To: engine.Peer{IP: netip.MustParseAddr("8.8.8.8")}, Protocol: "TCP", Port: 443}, "outside the cluster"},
		{"an IPv6 destination waits for a dual-stack sim", engine.Probe{From: pod, To: engine.Peer{IP: netip.MustParseAddr("fd00:10:244::b")}, Protocol: "TCP", Port: 80}, "IPv4-only"},
		{"SCTP needs a kernel that has it", engine.Probe{From: pod, To: engine.Peer{IP: netip.MustParseAddr("10.244.0.10")}, Protocol: "SCTP", Port: 80}, "SCTP"},
		{"a bare packet needs unit mode", engine.Probe{From: pod, To: engine.Peer{IP: netip.MustParseAddr("10.244.0.10")}, Protocol: "TCP", Exchange: "packet"}, "unit mode"},
		{"a world sender does not exist", engine.Probe{From: engine.Peer{IP: netip.MustParseAddr("192.0.2.1")}, To: engine.Peer{IP: netip.MustParseAddr("10.244.0.10")}, Protocol: "TCP"}, "outside the cluster"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := r.probe(t.Context(), &session{r: r, nodes: nodes}, c.p)
			if !strings.Contains(o.Skipped, c.want) {
				t.Fatalf("want a skip mentioning %q, got %+v", c.want, o)
			}
		})
	}
}

func TestNewRunnerSaysWhenNoClusterIsUp(t *testing.T) {
	_, err := NewRunner(Options{Name: "absent", StateDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "kestrel sim up") {
		t.Fatalf("want an error pointing at `kestrel sim up`, got %v", err)
	}
}
