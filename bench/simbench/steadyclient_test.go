package simbench

import (
	"net/netip"
	"os"

	"github.com/kestrelnet/kestrel/sim/network"
	"github.com/kestrelnet/kestrel/sim/workload"
	"net"
	"testing"
	"time"
)

// The client and server agree on both modes, and the figures are rates of
// real exchanges (a stream of at least one buffer, many ping-pongs).
func TestSteadyClientAgainstServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go serveSteady(l)
	pp, err := SteadyClient(l.Addr().String(), ModePingPong, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if pp.Rate < 100 || pp.Seconds < 0.2 {
		t.Fatalf("ping-pong: %+v", pp)
	}
	st, err := SteadyClient(l.Addr().String(), ModeStream, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// At least one 128 KiB buffer arrived within the run.
	if st.Rate < 128<<10*8/st.Seconds || st.Seconds < 0.2 {
		t.Fatalf("stream: %+v", st)
	}
	if _, err := SteadyClient(l.Addr().String(), "nope", time.Millisecond); err == nil {
		t.Fatal("an unknown mode was accepted")
	}
}

// The bare veth carries both modes between its namespaces, and its
// namespaces are gone after the cleanup.
func TestBareVeth(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: run the tests as root")
	}
	pair, cleanup, err := bareVeth()
	if err != nil {
		t.Fatal(err)
	}
	l, err := pair.listen()
	if err != nil {
		cleanup()
		t.Fatal(err)
	}
	go serveSteady(l)
	var pp, st SteadyResult
	err = network.Do(bareClientNetns, func() (err error) {
		if pp, err = SteadyClient(netip.AddrPortFrom(bareServerIP, steadyPort).String(), ModePingPong, 100*time.Millisecond); err != nil {
			return err
		}
		st, err = SteadyClient(netip.AddrPortFrom(bareServerIP, steadyPort).String(), ModeStream, 100*time.Millisecond)
		return err
	})
	// `kestrel sim connect` sends a line after its connect and waits for
	// an answer: the server gives one, so the bench can probe it like any
	// echo pod.
	probe := workload.Connect(workload.ConnectRequest{Netns: bareClientNetns, Protocol: "tcp",
		Target: netip.AddrPortFrom(bareServerIP, steadyPort).String(), Count: 3, Timeout: 2 * time.Second})
	l.Close()
	cleanup()
	if err != nil {
		t.Fatal(err)
	}
	if probe.Err != "" || len(probe.ConnectNs) != 3 {
		t.Fatalf("connect probes: %+v", probe)
	}
	if pp.Rate < 100 || st.Rate < 1e6 {
		t.Fatalf("ping-pong %+v, stream %+v", pp, st)
	}
	names, err := network.ListNetns()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n == bareClientNetns || n == bareServerNetns {
			t.Errorf("namespace %s left behind", n)
		}
	}
}
