package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kestrelnet/kestrel/agent/datapathstate"
	observerpb "github.com/kestrelnet/kestrel/agent/hubbleapi/observer"
	"github.com/kestrelnet/kestrel/agent/observe"
	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

// The flow pipeline from the ring buffer to the Hubble API: the real
// programs drop spoofed frames (BPF_PROG_TEST_RUN, every drop an event),
// the agent's own loop reads the ring buffer (ReadFlows over ReadEvent),
// keeps and counts each flow (RecordFlow), and its Observer streams them
// to a following gRPC client, which counts what it gets.
//
//	go test -run '^$' -bench FlowPipeline -benchtime 1x ./agent/daemon/
//
// paced/N: N events/s for 2 s; whether every one reached the client and
// none was lost (lost-events: the datapath's counter; api-lost: the
// Observer's report of flows overwritten before the client read them).
// burst: a ring's worth written at once, how fast the agent drains it.
// overload: four rings' worth at once: the ring fills and the lost-event
// counter counts what the programs could not write.

// flowPipeline is a loaded datapath feeding an agent, and a client
// following the agent's Observer.
type flowPipeline struct {
	dp       *datapath.Datapath
	prog     *ebpf.Program
	ctx      skbCtx
	frame    []byte
	received atomic.Uint64
	apiLost  atomic.Uint64
	// paused holds the agent's reader back, as an agent that cannot keep
	// up: the events stay in the ring buffer (at most one more is read).
	paused atomic.Bool
}

// skbCtx is the start of struct __sk_buff, as datapath.Run passes it.
type skbCtx struct {
	Len, PktType, Mark, QueueMapping, Protocol, VlanPresent, VlanTCI, VlanProto, Priority uint32
	IngressIfindex, Ifindex                                                               uint32
}

func newFlowPipeline(b *testing.B) *flowPipeline {
	dp := datapathtest.Load(b)
	pod := netip.MustParseAddr("10.230.0.2")
	if err := dp.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: 300, IPs: []netip.Addr{pod}}); err != nil {
		b.Fatal(err)
	}
	ifindex, ok := dp.DeviceOf(1)
	if !ok {
		b.Fatal("the test datapath gave the endpoint no device")
	}
	// From the pod's device with another source address: INVALID_SOURCE.
	frame, err := packet.Build(packet.Spec{Src: netip.MustParseAddr("10.230.0.99"), Dst: netip.MustParseAddr("10.230.0.3"),
		Protocol: "UDP", SrcPort: 40000, DstPort: 53, SrcMAC: datapath.TestMAC})
	if err != nil {
		b.Fatal(err)
	}
	d := &Daemon{cfg: Config{Node: "node-1", ClusterName: "default"}, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		metrics: newAgentMetrics(), cookies: datapathstate.NewCookies(), flowAdded: make(chan struct{}),
		flows: flowRing{instance: "bench"}, startTime: time.Now()}
	d.peers.Store(buildPeerIndex(nil, nil))
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	p := &flowPipeline{dp: dp, prog: dp.Program(datapath.FromContainer), frame: frame,
		ctx: skbCtx{Ifindex: ifindex, IngressIfindex: ifindex}}
	go d.ReadFlows(ctx, func() (datapath.Event, error) {
		for p.paused.Load() {
			time.Sleep(time.Millisecond)
		}
		return dp.ReadEvent()
	})

	sock := b.TempDir() + "/hubble.sock"
	ln, err := observe.Listen(sock)
	if err != nil {
		b.Fatal(err)
	}
	srv := observe.NewGRPCServer(observe.NewServer(d, "default"))
	go srv.Serve(ln) //nolint:errcheck
	b.Cleanup(srv.Stop)
	cl := dialObserver(b, sock)
	stream, err := cl.GetFlows(ctx, &observerpb.GetFlowsRequest{Follow: true})
	if err != nil {
		b.Fatal(err)
	}
	first := make(chan struct{})
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			if r.GetFlow() != nil {
				if p.received.Add(1) == 1 {
					close(first)
				}
			}
			p.apiLost.Add(r.GetLostEvents().GetNumEventsLost())
		}
	}()
	// The follower is attached once it gets a flow written after it asked.
	p.emit(b, 1)
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		b.Fatal("the follower got no flow")
	}
	return p
}

// emit runs the program n times on the spoofed frame: n drops, n events.
func (p *flowPipeline) emit(b *testing.B, n uint32) {
	var err error
	if nsErr := p.dp.InTestNamespace(func() {
		var ret uint32
		ret, err = p.prog.Run(&ebpf.RunOptions{Data: p.frame, Repeat: n, Context: p.ctx})
		if err == nil && ret != datapath.TCActShot {
			err = fmt.Errorf("the spoofed frame got TC code %d, want a drop", ret)
		}
	}); nsErr != nil {
		b.Fatal(nsErr)
	}
	if err != nil {
		b.Fatal(err)
	}
}

func (p *flowPipeline) lost(b *testing.B) uint64 {
	n, err := p.dp.EventsLost()
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// awaitReceived waits until the client has want flows or stops gaining.
func (p *flowPipeline) awaitReceived(want uint64) time.Time {
	last, lastChange := p.received.Load(), time.Now()
	for p.received.Load() < want && time.Since(lastChange) < 2*time.Second {
		time.Sleep(time.Millisecond)
		if n := p.received.Load(); n != last {
			last, lastChange = n, time.Now()
		}
	}
	return lastChange
}

func BenchmarkFlowPipeline(b *testing.B) {
	for _, rate := range []int{5_000, 10_000, 20_000, 40_000} {
		b.Run(fmt.Sprintf("paced/%d", rate), func(b *testing.B) {
			p := newFlowPipeline(b)
			lost0, got0 := p.lost(b), p.received.Load()
			const window = 2 * time.Second
			const tick = 5 * time.Millisecond
			perTick := uint32(rate / int(time.Second/tick))
			start := time.Now()
			var sent uint64
			for next := start; time.Since(start) < window; next = next.Add(tick) {
				p.emit(b, perTick)
				sent += uint64(perTick)
				time.Sleep(time.Until(next.Add(tick)))
			}
			produced := time.Since(start)
			p.awaitReceived(got0 + sent)
			got := p.received.Load() - got0
			// The programs on a loaded machine may not reach the rate asked
			// for: offered is what they wrote.
			b.ReportMetric(float64(sent)/produced.Seconds(), "offered-events/s")
			b.ReportMetric(float64(got)/produced.Seconds(), "delivered-flows/s")
			b.ReportMetric(float64(p.lost(b)-lost0), "lost-events")
			b.ReportMetric(float64(p.apiLost.Load()), "api-lost")
			b.ReportMetric(float64(sent-min(sent, got)), "missing")
		})
	}
	b.Run("drain", func(b *testing.B) {
		// 40,000 events (72 bytes and an 8-byte header each) fill most of
		// the 4 MiB ring while the agent is held back; then the time to the
		// last flow at the client is how fast the agent takes them from the
		// ring buffer to the API.
		p := newFlowPipeline(b)
		lost0, got0 := p.lost(b), p.received.Load()
		const n = 40_000
		p.paused.Store(true)
		p.emit(b, n)
		start, cpu0 := time.Now(), cpuTime(b)
		p.paused.Store(false)
		end := p.awaitReceived(got0 + n)
		got := p.received.Load() - got0
		b.ReportMetric(float64(got)/end.Sub(start).Seconds(), "drained-flows/s")
		// On a shared machine the wall-clock rate is what the process got
		// of the CPUs; per CPU-second (agent, Observer and client alike, in
		// this one process) it is what the pipeline costs.
		b.ReportMetric(float64(got)/(cpuTime(b)-cpu0).Seconds(), "flows/cpu-s")
		b.ReportMetric(float64(p.lost(b)-lost0), "lost-events")
		b.ReportMetric(float64(p.apiLost.Load()), "api-lost")
		b.ReportMetric(float64(n-min(n, got)), "missing")
	})
	b.Run("overload", func(b *testing.B) {
		// Two rings' worth while the agent is held back: the programs
		// count what the full ring cannot take, and every event is either
		// delivered, or counted lost by the datapath or by the Observer.
		p := newFlowPipeline(b)
		lost0, got0 := p.lost(b), p.received.Load()
		const n = 2 * 52_500
		p.paused.Store(true)
		p.emit(b, n)
		p.paused.Store(false)
		p.awaitReceived(got0 + n)
		lost, got, apiLost := p.lost(b)-lost0, p.received.Load()-got0, p.apiLost.Load()
		if lost == 0 {
			b.Errorf("%d events written into a ring of about 52,000 with no reader, yet none counted lost (%d delivered)", n, got)
		}
		if sum := got + lost + apiLost; sum+1 < n || sum > n {
			b.Errorf("%d events: %d delivered + %d lost in the datapath + %d lost at the API = %d", n, got, lost, apiLost, sum)
		}
		b.ReportMetric(float64(lost), "lost-events")
		b.ReportMetric(float64(apiLost), "api-lost")
		b.ReportMetric(float64(got), "delivered-flows")
	})
}

// cpuTime is the CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func dialObserver(b *testing.B, sock string) observerpb.ObserverClient {
	c, err := grpc.NewClient(observe.Target(sock), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return observerpb.NewObserverClient(c)
}
