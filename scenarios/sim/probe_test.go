package sim

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/kestrelnet/kestrel/scenarios/engine"
)

func TestProbesSimCannotSendAreSkippedWithAReason(t *testing.T) {
	r := &Runner{name: "kestrel", backend: simBackend{name: "kestrel"}, live: newLiveState()}
	pod := engine.Peer{Node: "node-1", IP: netip.MustParseAddr("172.18.0.2")}
	nodes := nodeMap{"node-1": 1}
	cases := []struct {
		name string
		p    engine.Probe
		want string
	}{
		{"SCTP needs a kernel that has it", engine.Probe{From: pod, To: engine.Peer{IP: netip.MustParseAddr("10.244.0.10")}, Protocol: "SCTP", Port: 80}, "SCTP"},
		{"a bare packet needs unit mode", engine.Probe{From: pod, To: engine.Peer{IP: netip.MustParseAddr("10.244.0.10")}, Protocol: "TCP", Exchange: "packet"}, "unit mode"},
		{"a world sender does not exist", engine.Probe{From: engine.Peer{IP: netip.MustParseAddr("192.0.2.1")}, To: engine.Peer{IP: netip.MustParseAddr("10.244.0.10")}, Protocol: "TCP"}, "via: NODE"},
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

// The sim is dual-stack: its IPv6 pod, underlay and service ranges are
// probed; nothing else is.
func TestSimRangesCoverBothFamilies(t *testing.T) {
	for a, want := range map[string]bool{
		"10.244.2.10": true, "fd00:10:244:2::a": true, // pods of node-3
		"172.30.0.11": true, "fd00:172:30::11": true, // node-1's underlay addresses
		"10.96.0.10": true, "fd00:10:96::a": true, // services
		"2001:db8:1::10": false, "fd00:10:245::1": false, "8.8.8.8": false,
	} {
		if got := inSim(netip.MustParseAddr(a)); got != want {
			t.Errorf("inSim(%s) = %v, want %v", a, got, want)
		}
	}
}

func TestNodeProbesUseTheNodesAddressOfTheProbesFamily(t *testing.T) {
	nodes := nodeMap{"kind-worker": 2}
	for engineIP, want := range map[string]string{"172.18.0.3": "172.30.0.12", "fc00:f853:ccd:e793::3": "fd00:172:30::12"} {
		got, err := nodes.hostIP(simBackend{}, engine.Peer{Node: "kind-worker", IP: netip.MustParseAddr(engineIP)})
		if err != nil || got.String() != want {
			t.Errorf("hostIP for %s = %v, %v; want %s", engineIP, got, err, want)
		}
	}
}

// A server's answer names the backend of a service probe and the client
// address it saw; a sim node's address is reported as the scenario's node.
func TestAnAnswerGivesTheBackendAndTheClientInTheScenariosAddresses(t *testing.T) {
	s := &session{r: &Runner{backend: simBackend{}}, nodes: nodeMap{"kind-worker": 2}, cluster: &engine.Cluster{NodeIPs: map[string][]netip.Addr{
		"kind-worker": {netip.MustParseAddr("172.18.0.3"), netip.MustParseAddr("fc00:f853:ccd:e793::3")},
	}}}
	svc := engine.Probe{To: engine.Peer{Service: "x/web"}}
	nodePort := engine.Probe{To: engine.Peer{Node: "kind-worker", Frontend: "x/web"}}
	world := engine.Probe{To: engine.Peer{IP: netip.MustParseAddr("203.0.113.11")}}
	for _, c := range []struct {
		p                     engine.Probe
		answer                string
		wantBackend, wantAddr string
	}{
		{svc, "x/a 80 10.244.0.10", "x/a", "10.244.0.10"},
		{nodePort, "x/a 80 172.30.0.12", "x/a", "172.18.0.3"},
		{nodePort, "x/a 80 fd00:172:30::12", "x/a", "fc00:f853:ccd:e793::3"},
		{nodePort, "x/a 80 203.0.113.2", "x/a", "203.0.113.2"},
		{world, "world:203.0.113.11 443 172.30.0.11", "", "172.30.0.11"},
		{svc, "x/a 80", "x/a", "invalid IP"},
	} {
		b, a := s.readAnswer(c.p, c.answer)
		if b != c.wantBackend || a.String() != c.wantAddr {
			t.Errorf("%q: backend %q, client %s; want %q, %s", c.answer, b, a, c.wantBackend, c.wantAddr)
		}
	}
}
