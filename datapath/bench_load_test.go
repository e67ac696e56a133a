package datapath_test

import (
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

// TestBenchCursor checks what the benchmark rests on: each packet of a run is
// rewritten to the next flow (remote address first, then the port), the
// cursor returns to flow 0 after Flows packets, and the benchmark programs
// work on the datapath's own maps (the reference finds an entry the
// datapath's own program made, and misses one it did not).
func TestBenchCursor(t *testing.T) {
	d := datapathtest.Load(t)
	setup(t, d, false, false)
	first := netip.MustParseAddr("10.9.0.1")
	b, err := datapath.LoadBench(d, datapath.BenchConfig{RemoteFirst: first, RemoteCount: 3, PortFirst: 2000, Flows: 5})
	must(t, err)
	defer b.Close()
	frame, err := packet.Build(tcp(podA, first, 2000, 443, "ACK"))
	must(t, err)

	// Pinned so that every packet goes through one CPU's cursor.
	defer pinCPU(t)()
	must(t, b.Seed(0, 0))
	want := []struct {
		remote string
		port   uint16
	}{
		{"10.9.0.1", 2000}, {"10.9.0.2", 2000}, {"10.9.0.3", 2000}, {"10.9.0.1", 2001}, {"10.9.0.2", 2001},
		{"10.9.0.1", 2000}, // back at flow 0 after Flows packets
	}
	for i, w := range want {
		out := make([]byte, len(frame))
		opts := &ebpf.RunOptions{Data: frame, DataOut: out}
		if _, err := b.Program(datapath.BenchEmpty, datapath.FromContainer).Run(opts); err != nil {
			t.Fatal(err)
		}
		dst := netip.AddrFrom4([4]byte(out[30:34]))
		sport := uint16(out[34])<<8 | uint16(out[35])
		if dst.String() != w.remote || sport != w.port {
			t.Fatalf("packet %d went to %s from port %d, want %s from %d", i, dst, sport, w.remote, w.port)
		}
		if got := netip.AddrFrom4([4]byte(out[26:30])); got != podA {
			t.Fatalf("packet %d: the local address changed to %s", i, got)
		}
	}
	c, err := b.Counts()
	must(t, err)
	if c.Packets != uint64(len(want)) {
		t.Fatalf("cursor counted %d packets, want %d", c.Packets, len(want))
	}

	// Flow 0 opened through the datapath's own program: the reference, run
	// on flow 0 only, must hit it; on flow 1 (never opened) it must miss.
	expectForwarded(t, run(t, d, datapath.FromContainer, tcp(podA, first, 2000, 443, "SYN")))
	for flow, misses := range []uint64{0, 1} {
		must(t, b.Seed(uint32(flow), 0))
		ret, err := b.Program(datapath.BenchReference, datapath.FromContainer).Run(&ebpf.RunOptions{Data: frame})
		must(t, err)
		c, err := b.Counts()
		must(t, err)
		if c.Misses != misses || (misses == 0) != (ret == datapath.TCActOK) {
			t.Fatalf("reference on flow %d: %d misses and code %d, want %d misses", flow, c.Misses, ret, misses)
		}
	}
}
