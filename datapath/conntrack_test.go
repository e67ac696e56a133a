package datapath_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
)

// ctSetup: A may open TCP/80 to B; A's ingress is enforced and allows nothing,
// so a packet from B reaches A only as a reply to a live entry.
func ctSetup(t *testing.T, cfg datapath.Config) *datapath.Datapath {
	t.Helper()
	d := datapathtest.LoadConfig(t, cfg)
	setup(t, d, true, false)
	must(t, d.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: idA, IPs: []netip.Addr{podA}, EgressEnforced: true, IngressEnforced: true}))
	must(t, d.SetPolicy(1, []datapath.PolicyEntry{{Identity: idB, Direction: datapath.Egress, Protocol: 6, PortLo: 80}}))
	return d
}

func TestConntrackLifetimes(t *testing.T) {
	const sport = 42000
	cases := []struct {
		name     string
		cfg      datapath.Config
		exchange [][]string // flags A->B, B->A alternating, starting with A
	}{
		{"an unanswered SYN expires after the SYN lifetime", datapath.Config{CTLifetimeSYN: 1}, [][]string{{"SYN"}}},
		{"an established flow expires after the TCP lifetime", datapath.Config{CTLifetimeTCP: 1}, [][]string{{"SYN"}, {"SYN", "ACK"}, {"ACK"}}},
		{"a flow closed by FIN both ways expires after the close lifetime", datapath.Config{CTLifetimeClose: 1},
			[][]string{{"SYN"}, {"SYN", "ACK"}, {"ACK"}, {"FIN", "ACK"}, {"FIN", "ACK"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := ctSetup(t, c.cfg)
			send := func(i int) datapath.Event {
				if i%2 == 0 {
					return run(t, d, datapath.FromContainer, tcp(podA, podB, sport, 80, c.exchange[i]...))
				}
				return run(t, d, datapath.ToContainer, tcp(podB, podA, 80, sport, c.exchange[i]...))
			}
			for i := range c.exchange {
				expectForwarded(t, send(i))
			}
			// Resending the last packet leaves the state as it is: still tracked.
			if ev := send(len(c.exchange) - 1); ev.CT.String() == "new" {
				t.Fatalf("before the lifetime ends the flow must be tracked, got %s", ev)
			}
			time.Sleep(1100 * time.Millisecond)
			expectDropped(t, run(t, d, datapath.ToContainer, tcp(podB, podA, 80, sport, "ACK")), "POLICY_DENIED")
		})
	}
}

func TestAnEstablishedFlowOutlivesTheShortLifetimes(t *testing.T) {
	d := ctSetup(t, datapath.Config{CTLifetimeSYN: 1, CTLifetimeClose: 1})
	expectForwarded(t, run(t, d, datapath.FromContainer, tcp(podA, podB, 42001, 80, "SYN")))
	expectForwarded(t, run(t, d, datapath.ToContainer, tcp(podB, podA, 80, 42001, "SYN", "ACK")))
	time.Sleep(1100 * time.Millisecond)
	if ev := run(t, d, datapath.ToContainer, tcp(podB, podA, 80, 42001, "ACK")); ev.CT.String() != "reply" {
		t.Fatalf("an answered flow lives for the TCP lifetime, got %s", ev)
	}
}
