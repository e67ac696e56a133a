// Package datapathcost measures what the datapath's service translation
// costs per packet with BPF_PROG_TEST_RUN, over many distinct flows (the
// method of datapath/bench_test.go, see bench/README.md): a new flow from a
// pod to a service frontend against a new flow to a pod on the same
// datapath, and the empty program (the frame rewrite alone) under both.
package datapathcost

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/cilium/ebpf"

	"github.com/kestrelnet/kestrel/bench/metrics"
	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

const (
	// repeat packets per sample, each another flow.
	repeat = 20000
	// The client pod A (egress enforced, allowed to the backends' port).
	idA       = 300
	remoteID  = 1000
	port      = 443
	portFirst = 1024
)

var (
	podA        = netip.MustParseAddr("10.244.0.10")
	vipFirst    = netip.MustParseAddr("10.96.0.0")
	remoteFirst = netip.MustParseAddr("10.1.0.0")
)

// Sample is one run's medians, ns per packet as the kernel timed them.
type Sample struct {
	Service, Pod           float64 // the pipeline on a new flow to a frontend / to a pod
	ServiceEmpty, PodEmpty float64 // the empty program on the same frames
}

// ServiceOverPod is the service flow's cost over the pod flow's, each with
// its empty program subtracted: what translation adds, as a factor.
func (s Sample) ServiceOverPod() float64 {
	return (s.Service - s.ServiceEmpty) / (s.Pod - s.PodEmpty)
}

// ServiceOverEmpty is the service flow's time over the empty program's.
func (s Sample) ServiceOverEmpty() float64 { return s.Service / s.ServiceEmpty }

// PodOverEmpty is the pod flow's time over the empty program's.
func (s Sample) PodOverEmpty() float64 { return s.Pod / s.PodEmpty }

// Services loads a fresh datapath with n services of backends backends each
// (remote pods), and measures samples samples of each program; it checks that
// every packet was forwarded and that the service flows were remembered.
func Services(n, backends, samples int, algo datapath.LBAlgorithm) (Sample, error) {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return Sample{}, err
	}
	d, err := datapath.Load(datapath.Config{TestDevices: true, MonitorAggregation: datapath.MonitorAggregationMedium,
		ServiceRanges: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")}})
	if err != nil {
		return Sample{}, err
	}
	defer d.Close()
	// Drain events as the agent does, so they are really written.
	go func() {
		for {
			if _, err := d.ReadEvent(); err != nil {
				return
			}
		}
	}()
	if err := d.SyncIPCache([]datapath.IPCacheEntry{
		{Prefix: netip.PrefixFrom(podA, 32), Identity: idA},
		{Prefix: netip.PrefixFrom(remoteFirst, 16), Identity: remoteID},
	}); err != nil {
		return Sample{}, err
	}
	if err := d.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: idA, IPs: []netip.Addr{podA}, EgressEnforced: true}); err != nil {
		return Sample{}, err
	}
	if err := d.SetPolicy(1, []datapath.PolicyEntry{{Identity: remoteID, Direction: datapath.Egress, Protocol: 6, PortLo: port}}); err != nil {
		return Sample{}, err
	}
	svcs := make([]datapath.Service, n)
	for i := range svcs {
		svcs[i] = datapath.Service{ID: uint32(i + 1), Frontend: netip.AddrPortFrom(addrPlus(vipFirst, i), port), Protocol: 6, Algorithm: algo}
		for k := range backends {
			svcs[i].Backends = append(svcs[i].Backends, netip.AddrPortFrom(addrPlus(remoteFirst, (backends*i+k)%65536), port))
		}
	}
	if err := d.SyncServices(svcs); err != nil {
		return Sample{}, err
	}
	toService, err := datapath.LoadBench(d, datapath.BenchConfig{RemoteFirst: vipFirst, RemoteCount: uint32(n), PortFirst: portFirst})
	if err != nil {
		return Sample{}, err
	}
	defer toService.Close()
	toPod, err := datapath.LoadBench(d, datapath.BenchConfig{RemoteFirst: remoteFirst, RemoteCount: uint32(min(n, 65536)), PortFirst: portFirst})
	if err != nil {
		return Sample{}, err
	}
	defer toPod.Close()
	svcFrame, err := packet.Build(packet.Spec{Src: podA, Dst: vipFirst, Protocol: "TCP", SrcPort: portFirst, DstPort: port, Flags: []string{"SYN"}})
	if err != nil {
		return Sample{}, err
	}
	podFrame, err := packet.Build(packet.Spec{Src: podA, Dst: remoteFirst, Protocol: "TCP", SrcPort: portFirst, DstPort: port, Flags: []string{"SYN"}})
	if err != nil {
		return Sample{}, err
	}
	var svcNs, podNs, svcEmpty, podEmpty []float64
	next := uint32(0)
	var packets uint64
	run := func(b *datapath.Bench, kind datapath.BenchProgram, frame []byte, into *[]float64) error {
		if err := b.Seed(next, uint32(cpus)*repeat); err != nil {
			return err
		}
		ret, per, err := b.Run(kind, datapath.FromContainer, frame, repeat)
		if err != nil {
			return err
		}
		if ret != datapath.TCActOK {
			return fmt.Errorf("program %d returned %d, want TC_ACT_OK", kind, ret)
		}
		c, err := b.Counts()
		if err != nil {
			return err
		}
		if kind == datapath.BenchPipeline {
			packets += c.Packets
		}
		*into = append(*into, float64(per.Nanoseconds()))
		return nil
	}
	for range samples {
		for _, step := range []struct {
			b     *datapath.Bench
			kind  datapath.BenchProgram
			frame []byte
			into  *[]float64
		}{
			{toService, datapath.BenchEmpty, svcFrame, &svcEmpty},
			{toService, datapath.BenchPipeline, svcFrame, &svcNs},
			{toPod, datapath.BenchEmpty, podFrame, &podEmpty},
			{toPod, datapath.BenchPipeline, podFrame, &podNs},
		} {
			if err := run(step.b, step.kind, step.frame, step.into); err != nil {
				return Sample{}, err
			}
		}
		next += uint32(cpus) * repeat
		// Keep conntrack from filling: every packet was a new flow.
		if err := d.FlushConntrack(); err != nil {
			return Sample{}, err
		}
	}
	// Every packet was forwarded as a new flow, the service ones to a
	// backend: they pass A's egress policy only so (frontends are not in
	// the ipcache).
	counts, err := d.Counters()
	if err != nil {
		return Sample{}, err
	}
	if got := counts[datapath.CounterKey{Reason: 0, Direction: datapath.Egress}].Packets; got != packets {
		return Sample{}, fmt.Errorf("%d packets forwarded, want %d", got, packets)
	}
	if d.ServiceEntries().Flows == 0 {
		return Sample{}, fmt.Errorf("no service flow was remembered")
	}
	return Sample{Service: median(svcNs), Pod: median(podNs), ServiceEmpty: median(svcEmpty), PodEmpty: median(podEmpty)}, nil
}

func addrPlus(a netip.Addr, i int) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Metrics measures each size runs times (a fresh datapath each run) and
// returns the metric family, with progress lines on progress.
func Metrics(sizes []int, backends, runs, samples int, progress func(string)) ([]metrics.Metric, error) {
	var out []metrics.Metric
	for _, n := range sizes {
		var svc, pod, svcOverPod, svcOverEmpty, podOverEmpty []float64
		for r := range runs {
			progress(fmt.Sprintf("datapath cost: %d services, run %d/%d", n, r+1, runs))
			s, err := Services(n, backends, samples, datapath.LBRandom)
			if err != nil {
				return nil, fmt.Errorf("datapath cost at %d services: %w", n, err)
			}
			svc = append(svc, s.Service-s.ServiceEmpty)
			pod = append(pod, s.Pod-s.PodEmpty)
			svcOverPod = append(svcOverPod, s.ServiceOverPod())
			svcOverEmpty = append(svcOverEmpty, s.ServiceOverEmpty())
			podOverEmpty = append(podOverEmpty, s.PodOverEmpty())
		}
		p := fmt.Sprintf("datapath-cost/kestrel/services=%d/", n)
		out = append(out,
			metrics.Summarize(p+"service-new-ns-per-pkt", "ns", metrics.Lower, svc),
			metrics.Summarize(p+"pod-new-ns-per-pkt", "ns", metrics.Lower, pod),
			metrics.Summarize(p+"service-over-pod", metrics.UnitRatio, metrics.Lower, svcOverPod),
			metrics.Summarize(p+"service-over-empty", metrics.UnitRatio, metrics.Lower, svcOverEmpty),
			metrics.Summarize(p+"pod-over-empty", metrics.UnitRatio, metrics.Lower, podOverEmpty))
	}
	return out, nil
}
