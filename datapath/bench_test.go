package datapath_test

import (
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

const (
	// benchRepeat is how many packets the kernel runs and times per sample;
	// every one is another flow (bpf/bench.c rewrites the frame each time).
	benchRepeat = 20000
	// benchSamples per program and case; the median is reported.
	benchSamples = 5
	// benchFlows established flows per hook, cycled over by established runs:
	// more than the caches hold, as on a busy node.
	benchFlows = 16384
	// Remote flows are allowed to this port and denied to the other.
	portAllowed, portDenied = 443, 80
	benchPortFirst          = 1024
)

// benchFailures counts failed runs: the testing package does not pass the
// failure of a -count repetition after the first on to the exit status.
var benchFailures atomic.Int32

// benchRemoteFirst is the first of the remote pods' addresses: one /32 each
// in the ipcache, the range bench.c cycles the remote address over.
var benchRemoteFirst = netip.MustParseAddr("10.1.0.0")

// benchState installs A (endpoint 1, egress enforced) and B (endpoint 2,
// ingress enforced), ipcacheN ipcache entries (A, B and the remote pods) and
// policyN policy entries on each of A's egress and B's ingress. The remote
// pods have policyN identities in turn, each allowed to TCP port 443 only, so
// new flows spread over every policy entry. Returns the remote pod count.
func benchState(b *testing.B, d *datapath.Datapath, ipcacheN, policyN int) uint32 {
	b.Helper()
	entries := []datapath.IPCacheEntry{
		{Prefix: netip.PrefixFrom(podA, 32), Identity: idA},
		{Prefix: netip.PrefixFrom(podB, 32), Identity: idB},
	}
	remotes := ipcacheN - len(entries)
	first := benchRemoteFirst.As4()
	base := uint32(first[0])<<24 | uint32(first[1])<<16 | uint32(first[2])<<8 | uint32(first[3])
	for i := range remotes {
		a := base + uint32(i)
		ip := netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
		entries = append(entries, datapath.IPCacheEntry{Prefix: netip.PrefixFrom(ip, 32), Identity: uint32(1000 + i%policyN)})
	}
	if err := d.SyncIPCache(entries); err != nil {
		b.Fatal(err)
	}
	var egress, ingress []datapath.PolicyEntry
	for i := range policyN {
		e := datapath.PolicyEntry{Identity: uint32(1000 + i), Protocol: 6, PortLo: portAllowed}
		e.Direction = datapath.Egress
		egress = append(egress, e)
		e.Direction = datapath.Ingress
		ingress = append(ingress, e)
	}
	for _, err := range []error{
		d.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: idA, IPs: []netip.Addr{podA}, EgressEnforced: true}),
		d.UpsertEndpoint(datapath.Endpoint{ID: 2, Identity: idB, IPs: []netip.Addr{podB}, IngressEnforced: true}),
		d.SetPolicy(1, egress),
		d.SetPolicy(2, ingress),
	} {
		if err != nil {
			b.Fatal(err)
		}
	}
	return uint32(remotes)
}

// benchFrame is flow 0's packet on a hook: A to a remote pod from A's device,
// a remote pod to B towards B's. bench.c rewrites the remote address and
// the source port.
func benchFrame(b *testing.B, h datapath.Hook, dport uint16, flags ...string) []byte {
	b.Helper()
	s := tcp(benchRemoteFirst, podB, benchPortFirst, dport, flags...)
	if h == datapath.FromContainer {
		s = tcp(podA, benchRemoteFirst, benchPortFirst, dport, flags...)
	}
	frame, err := packet.Build(s)
	if err != nil {
		b.Fatal(err)
	}
	return frame
}

// benchReplyFrame is the SYN-ACK to flow 0 opened on hook h; it runs on the
// other hook, and bench.c rewrites its destination port.
func benchReplyFrame(b *testing.B, h datapath.Hook) []byte {
	b.Helper()
	s := tcp(podB, benchRemoteFirst, portAllowed, benchPortFirst, "SYN", "ACK")
	if h == datapath.FromContainer {
		s = tcp(benchRemoteFirst, podA, portAllowed, benchPortFirst, "SYN", "ACK")
	}
	frame, err := packet.Build(s)
	if err != nil {
		b.Fatal(err)
	}
	return frame
}

func otherHook(h datapath.Hook) datapath.Hook {
	if h == datapath.FromContainer {
		return datapath.ToContainer
	}
	return datapath.FromContainer
}

func hookDirection(h datapath.Hook) datapath.Direction {
	if h == datapath.FromContainer {
		return datapath.Egress
	}
	return datapath.Ingress
}

// pinCPU keeps the calling goroutine on one thread and that thread on one
// CPU until the returned func is called, so a run cannot move to a CPU whose
// cursor is elsewhere and samples do not pay for migrations.
func pinCPU(tb testing.TB) func() {
	tb.Helper()
	runtime.LockOSThread()
	var old, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		tb.Fatal(err)
	}
	one.Set(0)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		tb.Fatal(err)
	}
	return func() {
		unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	}
}

// runBench seeds bn's cursor at flow first (stride apart per CPU), runs its
// program of kind on h benchRepeat times in the kernel and returns the
// kernel's ns per packet and what the programs counted, failing unless the
// last packet got the TC code want.
func runBench(b *testing.B, bn *datapath.Bench, kind datapath.BenchProgram, h datapath.Hook, frame []byte, first, stride uint32, repeat int, want uint32) (float64, datapath.BenchCounts) {
	b.Helper()
	if err := bn.Seed(first, stride); err != nil {
		b.Fatal(err)
	}
	ret, per, err := bn.Program(kind, h).Benchmark(frame, repeat, nil)
	if err != nil {
		b.Fatalf("%s program %d: %v", h, kind, err)
	}
	if ret != want {
		b.Fatalf("%s program %d: returned %d, want %d", h, kind, ret, want)
	}
	c, err := bn.Counts()
	if err != nil {
		b.Fatal(err)
	}
	return float64(per.Nanoseconds()), c
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// benchCounts is what the maps say happened: checked around each case so a
// case measures the path it names.
type benchCounts struct {
	forwarded, denied, tracked uint64
}

func readCounts(b *testing.B, d *datapath.Datapath, dir datapath.Direction, denied datapath.DropReason) benchCounts {
	b.Helper()
	c, err := d.Counters()
	if err != nil {
		b.Fatal(err)
	}
	n, err := d.ConntrackEntries()
	if err != nil {
		b.Fatal(err)
	}
	return benchCounts{
		forwarded: c[datapath.CounterKey{Reason: 0, Direction: dir}].Packets,
		denied:    c[datapath.CounterKey{Reason: denied, Direction: dir}].Packets,
		tracked:   uint64(n),
	}
}

// establish opens benchFlows flows on each hook through the pipeline with a
// whole handshake (the SYN and the final ACK on the hook, the SYN-ACK on the
// other), so the established runs hit entries the pipeline itself wrote and
// measure packets in the middle of a connection, not its handshake.
func establish(b *testing.B, d *datapath.Datapath, est *datapath.Bench) {
	b.Helper()
	before, err := d.ConntrackEntries()
	if err != nil {
		b.Fatal(err)
	}
	for _, h := range []datapath.Hook{datapath.FromContainer, datapath.ToContainer} {
		steps := []struct {
			kind  datapath.BenchProgram
			hook  datapath.Hook
			frame []byte
		}{
			{datapath.BenchPipeline, h, benchFrame(b, h, portAllowed, "SYN")},
			{datapath.BenchReply, otherHook(h), benchReplyFrame(b, h)},
			{datapath.BenchPipeline, h, benchFrame(b, h, portAllowed, "ACK")},
		}
		for _, s := range steps {
			runBench(b, est, s.kind, s.hook, s.frame, 0, 0, benchFlows, datapath.TCActOK)
		}
	}
	after, err := d.ConntrackEntries()
	if err != nil {
		b.Fatal(err)
	}
	if after-before != 2*benchFlows {
		b.Fatalf("establishing %d flows per hook made %d conntrack entries, want %d", benchFlows, after-before, 2*benchFlows)
	}
}

// BenchmarkPipeline measures the pipeline per packet over many distinct
// flows, the kernel timing benchRepeat packets per sample: a new flow policy
// allows (it pays for the conntrack insert), a new flow policy denies, and an
// established ACK (a conntrack hit in its own direction), each over the empty
// program that only rewrites the packet; and the reference program (endpoint
// lookup, conntrack hit updated in place) over the same established flows.
// The event ring is drained throughout as a live agent would, so events are
// really written; lost-events counts those the ring had no room for.
func BenchmarkPipeline(b *testing.B) {
	reasons, err := datapath.DropReasons()
	if err != nil {
		b.Fatal(err)
	}
	policyDenied := reasons["POLICY_DENIED"]
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		b.Fatal(err)
	}
	for _, ipcacheN := range []int{10_000, 100_000} {
		for _, policyN := range []int{10, 1_000, 16_000} {
			b.Run(fmt.Sprintf("ipcache=%d/policy=%d", ipcacheN, policyN), func(b *testing.B) {
				d := datapathtest.Load(b)
				remotes := benchState(b, d, ipcacheN, policyN)
				go func() {
					for {
						if _, err := d.ReadEvent(); err != nil {
							return
						}
					}
				}()
				cfg := datapath.BenchConfig{RemoteFirst: benchRemoteFirst, RemoteCount: remotes, PortFirst: benchPortFirst}
				fresh, err := datapath.LoadBench(d, cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer fresh.Close()
				cfg.Flows = benchFlows
				est, err := datapath.LoadBench(d, cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer est.Close()
				for _, h := range []datapath.Hook{datapath.FromContainer, datapath.ToContainer} {
					// The testing package runs this -count times on the state
					// above; each run starts from the same conntrack.
					b.Run("hook="+h.String(), func(b *testing.B) {
						defer func() {
							if b.Failed() {
								benchFailures.Add(1)
							}
						}()
						if b.N != 1 {
							b.Fatalf("run with -benchtime 1x: a round is %d samples of %d packets per case, and rounds would outgrow conntrack", benchSamples, benchRepeat)
						}
						defer pinCPU(b)()
						if err := d.FlushConntrack(); err != nil {
							b.Fatal(err)
						}
						establish(b, d, est)
						benchHook(b, d, h, est, fresh, cpus, policyDenied)
					})
				}
				if n := benchFailures.Load(); n > 0 {
					b.Fatalf("%d runs failed (see above)", n)
				}
			})
		}
	}
}

// benchHook measures one hook's cases and reports them.
func benchHook(b *testing.B, d *datapath.Datapath, h datapath.Hook, est, fresh *datapath.Bench, cpus int, policyDenied datapath.DropReason) {
	b.Helper()
	// New flows start past the established ones and never repeat.
	next := uint32(benchFlows)
	lostBefore, err := d.EventsLost()
	if err != nil {
		b.Fatal(err)
	}
	dir := hookDirection(h)
	start := readCounts(b, d, dir, policyDenied)
	var estEmpty, ref, estab, newEmpty, denied, allowed []float64
	var estPackets, deniedPackets, allowedPackets uint64

	ack := benchFrame(b, h, portAllowed, "ACK")
	for range benchSamples {
		ns, _ := runBench(b, est, datapath.BenchEmpty, h, ack, 0, 0, benchRepeat, datapath.TCActOK)
		estEmpty = append(estEmpty, ns)
		ns, c := runBench(b, est, datapath.BenchReference, h, ack, 0, 0, benchRepeat, datapath.TCActOK)
		if c.Misses != 0 {
			b.Fatalf("reference: %d of %d packets missed their endpoint or conntrack entry", c.Misses, c.Packets)
		}
		ref = append(ref, ns)
		ns, c = runBench(b, est, datapath.BenchPipeline, h, ack, 0, 0, benchRepeat, datapath.TCActOK)
		estab = append(estab, ns)
		estPackets += c.Packets
	}
	newFlows := func(frame []byte, want uint32, packets *uint64) []float64 {
		var out []float64
		for range benchSamples {
			ns, _ := runBench(b, fresh, datapath.BenchEmpty, h, frame, next, benchRepeat, benchRepeat, datapath.TCActOK)
			newEmpty = append(newEmpty, ns)
			ns, c := runBench(b, fresh, datapath.BenchPipeline, h, frame, next, benchRepeat, benchRepeat, want)
			out = append(out, ns)
			*packets += c.Packets
			next += uint32(cpus) * benchRepeat
		}
		return out
	}
	denied = newFlows(benchFrame(b, h, portDenied, "SYN"), datapath.TCActShot, &deniedPackets)
	allowed = newFlows(benchFrame(b, h, portAllowed, "SYN"), datapath.TCActOK, &allowedPackets)

	// Every packet took the path its case names: established and allowed
	// packets forwarded, denied ones dropped by policy, and only the allowed
	// new flows left conntrack entries, one each. (Counted packets, not
	// repeats: an interrupted run is run again whole.)
	end := readCounts(b, d, dir, policyDenied)
	if got, want := end.forwarded-start.forwarded, estPackets+allowedPackets; got != want {
		b.Fatalf("%s: %d packets forwarded, want %d (established and allowed)", h, got, want)
	}
	if got := end.denied - start.denied; got != deniedPackets {
		b.Fatalf("%s: %d packets dropped with %s, want %d", h, got, policyDenied, deniedPackets)
	}
	if got := end.tracked - start.tracked; got != allowedPackets {
		b.Fatalf("%s: %d conntrack entries made, want %d (one per allowed new flow)", h, got, allowedPackets)
	}
	lostAfter, err := d.EventsLost()
	if err != nil {
		b.Fatal(err)
	}

	ee, ne := median(estEmpty), median(newEmpty)
	refOver, estOver := median(ref)-ee, median(estab)-ee
	b.ReportMetric(median(allowed)-ne, "allowed-new-ns/pkt")
	b.ReportMetric(median(denied)-ne, "denied-new-ns/pkt")
	b.ReportMetric(estOver, "established-ns/pkt")
	b.ReportMetric(refOver, "reference-ns/pkt")
	b.ReportMetric(estOver/refOver, "established/reference")
	b.ReportMetric(ne, "empty-ns/pkt")
	b.ReportMetric(float64(lostAfter-lostBefore), "lost-events")
	b.ReportMetric(0, "ns/op")
}
