package unit

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/packet"
	"github.com/kestrelnet/kestrel/scenarios/engine"
	"github.com/kestrelnet/kestrel/sim/workload"
)

// netdevHooks are the node device program's hooks (bpf/host.c): the frame
// a node receives by its device (from_netdev) and the one it sends there
// (to_netdev). ok is false for a datapath without them.
func netdevHooks() (fromNetdev, toNetdev datapath.Hook, ok bool) {
	return datapath.FromNetdev, datapath.ToNetdev, true
}

// maxHops bounds a frame's way through the nodes (a loop is a bug).
const maxHops = 8

// probeWorld sends a probe from a world source into the node it enters at
// (from: {ip, via: NODE}), as the node devices and pods' devices see it:
//   - the request crosses from_netdev of the via node (NodePort, LoadBalancer
//     and external IP translation, source NAT or DSR to a remote backend);
//     a frame the program sends out again (redirect) goes to from_netdev of
//     the node that owns its destination, one it passes goes up that node to
//     the pod it is for, through the pod's to_container;
//   - the reply (connect) leaves the pod by from_container and its node by
//     to_netdev; a frame addressed to another node (a source NAT) enters it
//     by from_netdev and leaves as that program sends it; it must reach the
//     world from the address and port the client sent to.
//
// The backend is the pod the request reached; the source IP is the client
// address that pod saw (a source NAT shows here).
func (s *session) probeWorld(p engine.Probe) engine.Observation {
	via, ok := s.nodes[p.From.Via]
	if !ok {
		return engine.Observation{Err: fmt.Errorf("via node %q has no datapath in this scenario", p.From.Via)}
	}
	if p.Exchange != "connect" && p.Exchange != "packet" && p.Exchange != "request" {
		return engine.Observation{Err: fmt.Errorf("exchange %q from the world is not available in unit mode yet", p.Exchange)}
	}
	conn := p
	if p.Exchange == "request" {
		conn.Exchange = "connect"
	}
	fwd, _, err := s.frames(conn)
	if err != nil {
		return engine.Observation{Err: err}
	}
	out, err := packet.Build(fwd)
	if err != nil {
		return engine.Observation{Err: err}
	}
	r := &serviceRun{s: s, obs: engine.Observation{Verdict: "allowed"}}
	// Request: into the via node, across nodes while a program sends it on.
	backend, at, out, ok := s.intoNode(r, "request", via, out)
	if !ok {
		return r.done()
	}
	src, dst, _ := endpointsOf(out)
	if p.To.Service != "" || p.To.Frontend != "" {
		r.obs.Backend = backend
	}
	r.obs.SourceIP = src.Addr()
	r.evidence = append(r.evidence, fmt.Sprintf("entered at %s: %s -> %s (%s), from %s", via.name, netip.AddrPortFrom(p.To.IP, p.Port), dst, backend, src))
	to := hop{node: at, hook: datapath.ToContainer, pod: backend}
	res, ok := r.run("request", to, false, out)
	if !ok || p.Exchange == "packet" {
		return r.done()
	}
	// A request: the backend's server answers it, or its ingress proxy
	// (redirected) decides it in-process as the agent's proxy would.
	server := p
	server.To.Pod = s.podRef(backend)
	proxyPort := redirectPort(res)
	proxied := p.Exchange == "request" && proxyPort != 0
	if proxied {
		syn := packet.Spec{Src: src.Addr(), Dst: dst.Addr(), Protocol: "TCP", SrcPort: src.Port(), DstPort: dst.Port(), Flags: []string{"SYN"}}
		s.throughProxy(server, syn, to, res, proxyPort, nil, &r.obs, &r.evidence)
		if r.obs.Err != nil || r.obs.Verdict == "dropped" {
			return r.done()
		}
	} else if p.Exchange == "request" && p.HTTP != nil {
		r.obs.Status = workload.Status(serverOf(server), p.HTTP.Method, p.HTTP.Path, p.HTTP.Header("Authorization"))
	}
	// Reply: out of the pod (or from the proxy, in the node's own stack) and
	// its node, across nodes while addressed to one.
	reply := packet.Spec{Src: dst.Addr(), Dst: src.Addr(), Protocol: p.Protocol, SrcPort: dst.Port(), DstPort: src.Port()}
	if strings.EqualFold(p.Protocol, "TCP") {
		reply.Flags = []string{"SYN", "ACK"}
	}
	if out, err = packet.Build(reply); err != nil {
		r.obs.Err = err
		return r.done()
	}
	if proxied {
		out, at, ok = s.leaveNode(r, at, out)
	} else {
		out, at, ok = s.outOfPod(r, at, backend, out)
	}
	if !ok {
		return r.done()
	}
	from, client, err := endpointsOf(out)
	want := netip.AddrPortFrom(p.To.IP, p.Port)
	switch {
	case err != nil:
		r.obs.Err = fmt.Errorf("the reply leaving %s: %w", at.name, err)
	case from != want || client.Addr() != p.From.IP:
		r.obs.Err = fmt.Errorf("the reply left %s from %s to %s, not from %s to the client %s: reverse translation missing", at.name, from, client, want, p.From.IP)
	}
	return r.done()
}

func dev(n *node, h datapath.Hook) hop { return hop{node: n, hook: h, pod: "node " + n.name} }

// intoNode delivers a frame that reaches node at by its device: from_netdev,
// then over the underlay to the node owning its destination for as long as
// a program sends it out again (redirect). It returns the pod the frame goes
// up to and that pod's node; to_container is the caller's to run. A reply
// a node sends out to the world returns with no pod. A frame
// that goes up a node with no pod of its address is refused there (nothing
// listens: rejected); one sent to the world is an error.
func (s *session) intoNode(r *serviceRun, leg string, at *node, out []byte) (string, *node, []byte, bool) {
	fromNetdev, _, _ := netdevHooks()
	for range maxHops {
		res, ok := r.run(leg, dev(at, fromNetdev), false, out)
		if !ok {
			return "", nil, nil, false
		}
		out = res.Out
		_, dst, err := endpointsOf(out)
		if err != nil {
			r.obs.Err = fmt.Errorf("the frame from_netdev of %s let through: %w", at.name, err)
			return "", nil, nil, false
		}
		if res.Code == datapath.TCActRedirect {
			next := s.owner(dst.Addr())
			if next == nil && leg == "reply" {
				return "", at, out, true // back to the world
			}
			if next == nil {
				r.obs.Err = fmt.Errorf("%s sent the %s back out to %s, outside the cluster", at.name, leg, dst)
				return "", nil, nil, false
			}
			r.evidence = append(r.evidence, fmt.Sprintf("%s sent the %s on to %s (%s)", at.name, leg, next.name, dst))
			at = next
			continue
		}
		pod, ok := s.podByIP[dst.Addr()]
		if !ok || s.nodes[s.pods[pod].node] != at {
			r.obs.Verdict = "rejected"
			r.evidence = append(r.evidence, fmt.Sprintf("%s took the %s to %s for itself: no pod of it is there, its stack refuses", at.name, leg, dst))
			return "", nil, nil, false
		}
		return pod, at, out, true
	}
	r.obs.Err = fmt.Errorf("the %s is still travelling after %d nodes", leg, maxHops)
	return "", nil, nil, false
}

// outOfPod sends a pod's reply (from node at): from_container, then to a pod
// of the same node directly (to_container), or out by to_netdev and into
// the node owning its destination (intoNode, then to_container), or to the
// world. It returns the frame as it arrives (or leaves the cluster) and the
// last node it crossed.
func (s *session) outOfPod(r *serviceRun, at *node, pod string, frame []byte) ([]byte, *node, bool) {
	res, ok := r.run("reply", hop{node: at, hook: datapath.FromContainer, pod: pod}, false, frame)
	if !ok {
		return nil, nil, false
	}
	out := res.Out
	_, dst, err := endpointsOf(out)
	if err != nil {
		r.obs.Err = fmt.Errorf("the reply from_container of %s let through: %w", pod, err)
		return nil, nil, false
	}
	if local, ok := s.podByIP[dst.Addr()]; ok && s.nodes[s.pods[local].node] == at {
		res, ok := r.run("reply", hop{node: at, hook: datapath.ToContainer, pod: local}, false, out)
		return res.Out, at, ok
	}
	return s.leaveNode(r, at, out)
}

// leaveNode sends a reply the node at sends itself (a pod's, past its
// from_container, or its proxy's): out by to_netdev and into the node owning
// its destination (intoNode, then to_container), or to the world.
func (s *session) leaveNode(r *serviceRun, at *node, out []byte) ([]byte, *node, bool) {
	_, toNetdev, _ := netdevHooks()
	res, ok := r.run("reply", dev(at, toNetdev), false, out)
	if !ok {
		return nil, nil, false
	}
	out = res.Out
	_, dst, err := endpointsOf(out)
	if err != nil {
		r.obs.Err = fmt.Errorf("the reply to_netdev of %s let out: %w", at.name, err)
		return nil, nil, false
	}
	next := s.owner(dst.Addr())
	if next == nil {
		return out, at, true
	}
	to, at, out, ok := s.intoNode(r, "reply", next, out)
	if !ok || to == "" {
		return out, at, ok
	}
	res, ok = r.run("reply", hop{node: at, hook: datapath.ToContainer, pod: to}, false, out)
	return res.Out, at, ok
}

// owner is the node a frame to a is delivered to over the underlay: the one
// whose pod range or node address holds it; nil for the world.
func (s *session) owner(a netip.Addr) *node {
	for name, cidrs := range s.podCIDRs {
		for _, c := range cidrs {
			if c.Contains(a) {
				return s.nodes[name]
			}
		}
	}
	for name, ips := range s.nodeIPs {
		for _, ip := range ips {
			if ip == a {
				return s.nodes[name]
			}
		}
	}
	return nil
}

// probeToWorld sends a pod's probe to an address outside the cluster as its
// node sends it: from_container of the pod, then to_netdev of its node
// (where masquerading makes the node's address the source, which is what
// the world server sees); the server's answer comes back to that address
// through from_netdev of the node and to_container of the pod, where it
// must arrive from the address the pod sent to.
func (s *session) probeToWorld(p engine.Probe, client *hop) engine.Observation {
	fromNetdev, toNetdev, _ := netdevHooks()
	fwd, _, err := s.frames(p)
	if err != nil {
		return engine.Observation{Err: err}
	}
	frame, err := packet.Build(fwd)
	if err != nil {
		return engine.Observation{Err: err}
	}
	r := &serviceRun{s: s, obs: engine.Observation{Verdict: "allowed"}}
	dev := hop{node: client.node, pod: "node " + client.node.name}
	out := frame
	for _, h := range []hop{*client, {node: dev.node, hook: toNetdev, pod: dev.pod}} {
		res, ok := r.run("request", h, false, out)
		if !ok {
			return r.done()
		}
		out = res.Out
	}
	src, dst, err := endpointsOf(out)
	if err != nil {
		r.obs.Err = fmt.Errorf("the frame to_netdev let out: %w", err)
		return r.done()
	}
	r.obs.SourceIP = src.Addr()
	r.evidence = append(r.evidence, fmt.Sprintf("left %s: %s -> %s", client.node.name, src, dst))
	if p.Exchange == "packet" {
		return r.done()
	}
	reply := packet.Spec{Src: dst.Addr(), Dst: src.Addr(), Protocol: p.Protocol, SrcPort: dst.Port(), DstPort: src.Port()}
	if strings.EqualFold(p.Protocol, "TCP") {
		reply.Flags = []string{"SYN", "ACK"}
	}
	if out, err = packet.Build(reply); err != nil {
		r.obs.Err = err
		return r.done()
	}
	in := *client
	in.hook = datapath.ToContainer
	for _, h := range []hop{{node: dev.node, hook: fromNetdev, pod: dev.pod}, in} {
		res, ok := r.run("reply", h, false, out)
		if !ok {
			return r.done()
		}
		out = res.Out
	}
	from, to, err := endpointsOf(out)
	switch {
	case err != nil:
		r.obs.Err = fmt.Errorf("the reply to_container let through: %w", err)
	case from.Addr() != p.To.IP || to.Addr() != p.From.IP:
		r.obs.Err = fmt.Errorf("the reply reached %s from %s to %s, not from %s to %s: reverse masquerading missing", client.pod, from, to, p.To.IP, p.From.IP)
	}
	return r.done()
}

// toWorld reports whether a probe goes from a pod to an address outside
// the cluster: no pod, node or service, nor any node's pod range.
func (s *session) toWorld(p engine.Probe) bool {
	if p.From.Pod == nil || p.To.Pod != nil || p.To.Node != "" || p.To.Service != "" || p.To.Frontend != "" {
		return false
	}
	if _, ok := s.podByIP[p.To.IP]; ok {
		return false
	}
	for _, cidrs := range s.podCIDRs {
		for _, c := range cidrs {
			if c.Contains(p.To.IP) {
				return false
			}
		}
	}
	for _, ips := range s.nodeIPs {
		for _, a := range ips {
			if a == p.To.IP {
				return false
			}
		}
	}
	return true
}
