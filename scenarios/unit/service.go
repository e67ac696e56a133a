package unit

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/packet"
	"github.com/kestrelnet/kestrel/scenarios/engine"
)

// skipServiceFromOutside: a service probe must start in a pod (world sources
// that name their node go through world.go); from a node it would need the
// node's socket-level load balancing, which BPF_PROG_TEST_RUN cannot run.
const skipServiceFromOutside = "service probes from a node, or from the world without via, have no hook to run in unit mode"

// serviceRun is one service probe in progress: its evidence and flows.
type serviceRun struct {
	s        *session
	obs      engine.Observation
	evidence []string
}

// run executes one hook and records its events; it reports whether the
// frame went on, and sets the verdict when it did not: shot is dropped, and
// a frame sent back with a drop event is a reject (the ICMP answer).
func (r *serviceRun) run(leg string, h hop, turnedBack bool, frame []byte) (datapath.RunResult, bool) {
	var res datapath.RunResult
	var err error
	if turnedBack {
		dev, ok := h.node.dp.DeviceOf(r.s.epIDs[h.pod])
		if !ok {
			r.obs.Err = fmt.Errorf("pod %s has no test device", h.pod)
			return res, false
		}
		res, err = h.node.dp.RunTurnedBack(dev, frame)
	} else {
		res, err = h.node.dp.Run(h.hook, frame)
	}
	if err != nil {
		r.obs.Err = err
		return res, false
	}
	var drop *datapath.Event
	for i, ev := range res.Events {
		r.obs.Flows = append(r.obs.Flows, r.s.flow(ev))
		r.evidence = append(r.evidence, fmt.Sprintf("%s %s@%s: %s%s", leg, h.hook, h.pod, ev, r.s.originsSuffix(ev.Cookie)))
		if ev.Verdict == datapath.VerdictDropped {
			drop = &res.Events[i]
		}
	}
	switch {
	case res.Code == datapath.TCActShot:
		r.obs.Verdict = "dropped"
	case drop != nil:
		r.obs.Verdict = "rejected"
	default:
		return res, true
	}
	if drop != nil {
		r.obs.Reason = drop.Reason.String()
	}
	return res, false
}

func (r *serviceRun) done() engine.Observation {
	r.obs.Evidence = strings.Join(r.evidence, "\n")
	return r.obs
}

// probeService sends a probe to a ClusterIP as the node's datapath would see
// it: the client's from_container translates it (or rejects it), the backend
// the translated frame is addressed to receives it on its own node, and for
// a connect the backend's answer goes back through its from_container and
// the client's to_container, where it must arrive from the service address.
func (s *session) probeService(p engine.Probe) engine.Observation {
	client, err := s.podHop(p.From, datapath.FromContainer)
	if err != nil {
		return engine.Observation{Err: err}
	}
	if client == nil {
		return engine.Observation{Skipped: skipServiceFromOutside}
	}
	if p.Exchange != "connect" && p.Exchange != "packet" {
		return engine.Observation{Err: fmt.Errorf("exchange %q to a service is not available in unit mode yet", p.Exchange)}
	}
	fwd, _, err := s.frames(p)
	if err != nil {
		return engine.Observation{Err: err}
	}
	frame, err := packet.Build(fwd)
	if err != nil {
		return engine.Observation{Err: err}
	}
	r := &serviceRun{s: s, obs: engine.Observation{Verdict: "allowed"}}
	res, ok := r.run("request", *client, false, frame)
	if !ok {
		return r.done()
	}
	src, dst, err := endpointsOf(res.Out)
	if err != nil {
		r.obs.Err = fmt.Errorf("the frame from_container let through: %w", err)
		return r.done()
	}
	backend, ok := s.podByIP[dst.Addr()]
	if next := s.owner(dst.Addr()); !ok && next != nil && next != client.node {
		// Another node's NodePort: as kube-proxy, the client's node leaves
		// it alone, and the node it is addressed to translates it.
		return s.probeAcrossNodes(p, r, client, res.Out, next)
	}
	if !ok {
		svc := p.To.Service
		if svc == "" {
			svc = p.To.Frontend
		}
		r.obs.Err = fmt.Errorf("from_container sent the probe to %s, which is no pod's address (service %s not translated?)", dst, svc)
		return r.done()
	}
	r.obs.Backend = backend
	r.obs.SourceIP = src.Addr()
	r.evidence = append(r.evidence, fmt.Sprintf("translated %s -> %s (%s), from %s", netip.AddrPortFrom(p.To.IP, p.Port), dst, backend, src))
	to, err := s.podHop(engine.Peer{Pod: s.podRef(backend)}, datapath.ToContainer)
	if err != nil {
		r.obs.Err = err
		return r.done()
	}
	// A pod reaching itself through its service: its own from_container
	// turns the frame back to its device (hairpin).
	hairpin := backend == client.pod
	if _, ok := r.run("request", *to, hairpin, res.Out); !ok || p.Exchange == "packet" {
		return r.done()
	}
	reply := packet.Spec{Src: dst.Addr(), Dst: src.Addr(), Protocol: p.Protocol, SrcPort: dst.Port(), DstPort: src.Port()}
	if strings.EqualFold(p.Protocol, "TCP") {
		reply.Flags = []string{"SYN", "ACK"}
	}
	frame, err = packet.Build(reply)
	if err != nil {
		r.obs.Err = err
		return r.done()
	}
	out := *to
	out.hook = datapath.FromContainer
	res, ok = r.run("reply", out, false, frame)
	if !ok {
		return r.done()
	}
	in := *client
	in.hook = datapath.ToContainer
	if res, ok = r.run("reply", in, hairpin, res.Out); !ok {
		return r.done()
	}
	from, _, err := endpointsOf(res.Out)
	want := netip.AddrPortFrom(p.To.IP, p.Port)
	switch {
	case err != nil:
		r.obs.Err = fmt.Errorf("the reply to_container let through: %w", err)
	case from != want:
		r.obs.Err = fmt.Errorf("the reply reached %s from %s, not from the service %s: reverse translation missing", client.pod, from, want)
	}
	return r.done()
}

// probeAcrossNodes follows a pod's probe that its node sends on untranslated
// to another node (a NodePort there): out by the client's node device, into
// the other node's (intoNode), to the pod it goes up to; the reply comes back
// the same way (outOfPod) and must reach the client from the address and
// port it sent to.
func (s *session) probeAcrossNodes(p engine.Probe, r *serviceRun, client *hop, frame []byte, next *node) engine.Observation {
	_, toNetdev, _ := netdevHooks()
	res, ok := r.run("request", dev(client.node, toNetdev), false, frame)
	if !ok {
		return r.done()
	}
	backend, at, out, ok := s.intoNode(r, "request", next, res.Out)
	if !ok {
		return r.done()
	}
	src, dst, _ := endpointsOf(out)
	r.obs.Backend, r.obs.SourceIP = backend, src.Addr()
	r.evidence = append(r.evidence, fmt.Sprintf("%s translated %s -> %s (%s), from %s", next.name, netip.AddrPortFrom(p.To.IP, p.Port), dst, backend, src))
	if _, ok := r.run("request", hop{node: at, hook: datapath.ToContainer, pod: backend}, false, out); !ok || p.Exchange == "packet" {
		return r.done()
	}
	reply := packet.Spec{Src: dst.Addr(), Dst: src.Addr(), Protocol: p.Protocol, SrcPort: dst.Port(), DstPort: src.Port()}
	if strings.EqualFold(p.Protocol, "TCP") {
		reply.Flags = []string{"SYN", "ACK"}
	}
	frame, err := packet.Build(reply)
	if err != nil {
		r.obs.Err = err
		return r.done()
	}
	if out, _, ok = s.outOfPod(r, at, backend, frame); !ok {
		return r.done()
	}
	from, to, err := endpointsOf(out)
	want := netip.AddrPortFrom(p.To.IP, p.Port)
	switch {
	case err != nil:
		r.obs.Err = fmt.Errorf("the reply reaching %s: %w", client.pod, err)
	case from != want || to.Addr() != p.From.IP:
		r.obs.Err = fmt.Errorf("the reply reached %s from %s, not from %s: reverse translation missing", to, from, want)
	}
	return r.done()
}

// podRef is the pod of a "ns/name" key, enough for podHop.
func (s *session) podRef(key string) *corev1.Pod {
	ns, name, _ := strings.Cut(key, "/")
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

// endpointsOf reads a frame's source and destination address and port.
func endpointsOf(frame []byte) (src, dst netip.AddrPort, err error) {
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.NoCopy)
	var sa, da netip.Addr
	switch ip := pkt.NetworkLayer().(type) {
	case *layers.IPv4:
		sa, _ = netip.AddrFromSlice(ip.SrcIP.To4())
		da, _ = netip.AddrFromSlice(ip.DstIP.To4())
	case *layers.IPv6:
		sa, _ = netip.AddrFromSlice(ip.SrcIP)
		da, _ = netip.AddrFromSlice(ip.DstIP)
	default:
		return src, dst, fmt.Errorf("no IP packet in %x", frame)
	}
	var sp, dp uint16
	switch t := pkt.TransportLayer().(type) {
	case *layers.TCP:
		sp, dp = uint16(t.SrcPort), uint16(t.DstPort)
	case *layers.UDP:
		sp, dp = uint16(t.SrcPort), uint16(t.DstPort)
	case *layers.SCTP:
		sp, dp = uint16(t.SrcPort), uint16(t.DstPort)
	default:
		return src, dst, fmt.Errorf("no TCP, UDP or SCTP segment in %x", frame)
	}
	return netip.AddrPortFrom(sa, sp), netip.AddrPortFrom(da, dp), nil
}
