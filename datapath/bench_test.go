package datapath_test

import (
	"fmt"
	"net/netip"
	"sort"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

// benchRepeat is how many times the kernel runs a program per measurement; the
// kernel times the loop itself, so syscall cost is amortised away.
const benchRepeat = 20000

// kernelNs runs prog on frame benchRepeat times in the kernel, five times, and
// returns the median ns per run.
func kernelNs(b *testing.B, prog *ebpf.Program, frame []byte) float64 {
	b.Helper()
	var samples []float64
	for i := 0; i < 5; i++ {
		_, per, err := prog.Benchmark(frame, benchRepeat, nil)
		if err != nil {
			b.Fatal(err)
		}
		samples = append(samples, float64(per.Nanoseconds()))
	}
	sort.Float64s(samples)
	return samples[len(samples)/2]
}

// benchState fills the maps: ipcache entries (pod /32s in 10.0.0.0/8) and, on
// the destination endpoint, policy entries for distinct identities with a
// port each; the probe frame's identity is present but not for its port.
func benchState(b *testing.B, d *datapath.Datapath, ipcacheN, policyN int) {
	b.Helper()
	entries := []datapath.IPCacheEntry{
		{Prefix: netip.PrefixFrom(podA, 32), Identity: idA},
		{Prefix: netip.PrefixFrom(podB, 32), Identity: idB},
	}
	for i := 0; len(entries) < ipcacheN; i++ {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		entries = append(entries, datapath.IPCacheEntry{Prefix: netip.PrefixFrom(ip, 32), Identity: uint32(1000 + i%50000)})
	}
	if err := d.SyncIPCache(entries); err != nil {
		b.Fatal(err)
	}
	pol := []datapath.PolicyEntry{{Identity: idA, Protocol: 6, PortLo: 443}}
	for i := 0; len(pol) < policyN; i++ {
		pol = append(pol, datapath.PolicyEntry{Identity: uint32(1000 + i), Protocol: 6, PortLo: uint16(1 + i%60000)})
	}
	for _, err := range []error{
		d.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: idA, IPs: []netip.Addr{podA}}),
		d.UpsertEndpoint(datapath.Endpoint{ID: 2, Identity: idB, IPs: []netip.Addr{podB}, IngressEnforced: true}),
		d.SetPolicy(2, pol),
	} {
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPipeline measures the to-container hook per packet, next to the
// empty program in the same run: a new flow that policy denies (every lookup,
// no conntrack entry left behind) and an established flow (conntrack hit).
// Reported: ns/pkt for the pipeline and ns/pkt-over-empty after subtracting
// the empty program's cost measured moments before.
func BenchmarkPipeline(b *testing.B) {
	empty, err := datapath.LoadBaseline()
	if err != nil {
		datapathtest.SkipOrFail(b, err)
	}
	defer empty.Close()
	denied, _ := packet.Build(tcp(podA, podB, 40000, 80, "SYN"))
	allowed, _ := packet.Build(tcp(podA, podB, 40001, 443, "SYN"))

	for _, ipcacheN := range []int{10_000, 100_000} {
		for _, policyN := range []int{10, 1_000, 16_000} {
			name := fmt.Sprintf("ipcache=%d/policy=%d", ipcacheN, policyN)
			b.Run(name, func(b *testing.B) {
				d := datapathtest.Load(b)
				benchState(b, d, ipcacheN, policyN)
				prog := d.Program(datapath.ToContainer)
				if res, err := d.Run(datapath.ToContainer, allowed); err != nil || res.Code != datapath.TCActOK {
					b.Fatalf("the established-flow frame must pass: %v %+v", err, res)
				}
				// Keep the ring buffer drained so every run pays for a real event.
				go func() {
					for {
						if _, err := d.ReadEvent(); err != nil {
							return
						}
					}
				}()
				var base, newFlow, est float64
				for i := 0; i < b.N; i++ {
					base = kernelNs(b, empty, denied)
					newFlow = kernelNs(b, prog, denied)
					est = kernelNs(b, prog, allowed)
				}
				b.ReportMetric(base, "empty-ns/pkt")
				b.ReportMetric(newFlow, "new-ns/pkt")
				b.ReportMetric(newFlow-base, "new-over-empty-ns/pkt")
				b.ReportMetric(est-base, "established-over-empty-ns/pkt")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
