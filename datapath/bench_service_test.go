package datapath_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

// benchVIPFirst is the first frontend address of the service benchmark; the
// cursor in bench.c walks the frontends as it walks remote pods elsewhere.
var benchVIPFirst = netip.MustParseAddr("10.96.0.0")

func addrPlus(a netip.Addr, i int) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// BenchmarkServices measures a new flow from a pod to a service frontend, per
// packet, over many distinct flows (bench.c rewrites each repeat to another
// frontend and source port), at 1k, 10k and 100k services with three
// backends each, random and Maglev, against a new flow to a pod (no
// service) on the same datapath: what the service lookup, the backend choice,
// remembering it and the DNAT add. A's egress is enforced and allows the
// backends' port, so policy runs on the backend as in production.
func BenchmarkServices(b *testing.B) {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1_000, 10_000, 100_000} {
		for _, algo := range []datapath.LBAlgorithm{datapath.LBRandom, datapath.LBMaglev} {
			name := map[datapath.LBAlgorithm]string{datapath.LBRandom: "random", datapath.LBMaglev: "maglev"}[algo]
			b.Run(fmt.Sprintf("services=%d/%s", n, name), func(b *testing.B) {
				if b.N != 1 {
					b.Fatal("run with -benchtime 1x")
				}
				d := datapathtest.LoadConfig(b, datapath.Config{MonitorAggregation: datapath.MonitorAggregationMedium,
					ServiceRanges: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")}})
				go func() {
					for {
						if _, err := d.ReadEvent(); err != nil {
							return
						}
					}
				}()
				// Backends are remote pods (identity 1000), three per service.
				ipc := []datapath.IPCacheEntry{
					{Prefix: netip.PrefixFrom(podA, 32), Identity: idA},
					{Prefix: netip.PrefixFrom(benchRemoteFirst, 16), Identity: 1000},
				}
				mustB(b, d.SyncIPCache(ipc))
				mustB(b, d.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: idA, IPs: []netip.Addr{podA}, EgressEnforced: true}))
				mustB(b, d.SetPolicy(1, []datapath.PolicyEntry{{Identity: 1000, Direction: datapath.Egress, Protocol: 6, PortLo: portAllowed}}))
				svcs := make([]datapath.Service, n)
				for i := range svcs {
					svcs[i] = datapath.Service{ID: uint32(i + 1), Frontend: netip.AddrPortFrom(addrPlus(benchVIPFirst, i), portAllowed),
						Protocol: 6, Algorithm: algo}
					for k := range 3 {
						svcs[i].Backends = append(svcs[i].Backends, netip.AddrPortFrom(addrPlus(benchRemoteFirst, (3*i+k)%65536), portAllowed))
					}
				}
				mustB(b, d.SyncServices(svcs))

				toService, err := datapath.LoadBench(d, datapath.BenchConfig{RemoteFirst: benchVIPFirst, RemoteCount: uint32(n), PortFirst: benchPortFirst})
				mustB(b, err)
				defer toService.Close()
				// Remote pods: the /16 the ipcache knows.
				toPod, err := datapath.LoadBench(d, datapath.BenchConfig{RemoteFirst: benchRemoteFirst, RemoteCount: uint32(min(n, 65536)), PortFirst: benchPortFirst})
				mustB(b, err)
				defer toPod.Close()

				h := datapath.FromContainer
				svcFrame := benchFrameTo(b, benchVIPFirst)
				podFrame := benchFrameTo(b, benchRemoteFirst)
				var svcNs, podNs, svcEmpty, podEmpty []float64
				next := uint32(0)
				packets := uint64(0)
				for range benchSamples {
					ns, _ := runBench(b, toService, datapath.BenchEmpty, h, svcFrame, next, benchRepeat, benchRepeat, datapath.TCActOK)
					svcEmpty = append(svcEmpty, ns)
					ns, c := runBench(b, toService, datapath.BenchPipeline, h, svcFrame, next, benchRepeat, benchRepeat, datapath.TCActOK)
					svcNs = append(svcNs, ns)
					packets += c.Packets
					ns, _ = runBench(b, toPod, datapath.BenchEmpty, h, podFrame, next, benchRepeat, benchRepeat, datapath.TCActOK)
					podEmpty = append(podEmpty, ns)
					ns, c = runBench(b, toPod, datapath.BenchPipeline, h, podFrame, next, benchRepeat, benchRepeat, datapath.TCActOK)
					podNs = append(podNs, ns)
					packets += c.Packets
					next += uint32(cpus) * benchRepeat
					// Keep conntrack from filling: every packet was a new flow.
					mustB(b, d.FlushConntrack())
				}
				// Every packet was forwarded as a new flow: the service ones
				// to a backend (they pass A's egress policy only so, the
				// frontends are not in the ipcache).
				counts, err := d.Counters()
				mustB(b, err)
				if got := counts[datapath.CounterKey{Reason: 0, Direction: datapath.Egress}].Packets; got != packets {
					b.Fatalf("%d packets forwarded, want %d", got, packets)
				}
				if f := d.ServiceEntries().Flows; f == 0 {
					b.Fatal("no service flow was remembered")
				}
				svc, pod := median(svcNs)-median(svcEmpty), median(podNs)-median(podEmpty)
				b.ReportMetric(svc, "service-new-ns/pkt")
				b.ReportMetric(pod, "pod-new-ns/pkt")
				b.ReportMetric(svc-pod, "service-extra-ns/pkt")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// benchFrameTo is A's SYN to dst on the allowed port; bench.c rewrites the
// destination and the source port.
func benchFrameTo(b *testing.B, dst netip.Addr) []byte {
	b.Helper()
	frame, err := packet.Build(tcp(podA, dst, benchPortFirst, portAllowed, "SYN"))
	mustB(b, err)
	return frame
}

func mustB(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
