package unit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/agent/proxy"
	httpproxy "github.com/kestrelnet/kestrel/agent/proxy/http"
	kafkaproxy "github.com/kestrelnet/kestrel/agent/proxy/kafka"
	tlsproxy "github.com/kestrelnet/kestrel/agent/proxy/tls"
	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/packet"
	"github.com/kestrelnet/kestrel/scenarios/engine"
	"github.com/kestrelnet/kestrel/sim/workload"
)

// openProxyListeners gives a test datapath the HTTP, TLS and Kafka proxies' listening
// sockets in its namespace, as an agent has them on its node: the programs'
// socket lookups find them, so a redirected flow is REDIRECTED (and one
// whose proxy port nobody listens on still drops PROXY_UNAVAILABLE). Nothing
// is ever accepted: unit mode decides requests in-process.
func openProxyListeners(dp *datapath.Datapath) ([]io.Closer, error) {
	var out []io.Closer
	for _, port := range []uint16{policy.ProxyPortHTTPIngress, policy.ProxyPortHTTPEgress, policy.ProxyPortDNSIngress, policy.ProxyPortDNSEgress,
		policy.ProxyPortTLSIngress, policy.ProxyPortTLSEgress, policy.ProxyPortKafkaIngress, policy.ProxyPortKafkaEgress} {
		var ln net.Listener
		var err error
		if e := dp.InTestNamespace(func() { ln, err = datapath.ListenProxy(context.Background(), port) }); e != nil {
			err = e
		}
		if err != nil {
			for _, l := range out {
				l.Close()
			}
			return nil, err
		}
		out = append(out, ln)
	}
	udp, err := openDNSProxySockets(dp)
	if err != nil {
		for _, l := range out {
			l.Close()
		}
		return nil, err
	}
	return append(out, udp...), nil
}

// probeRequest is an `exchange: request` probe: the connection's SYN
// crosses the hooks a real one would; where a hook redirects it to the
// proxy, the proxy's decision on the request is made in-process by the
// agent's own code (agent/proxy against this node's state and the flow's
// conntrack entry), and an allowed request's upstream connection crosses
// the destination's hook with the proxy's mark, as the agent's proxy dials
// it. Without a redirect the exchange is a connect. An allowed request gets
// the sim workload's status.
func (s *session) probeRequest(p engine.Probe) engine.Observation {
	conn := p
	conn.Exchange = "connect"
	fwd, _, err := s.frames(conn)
	if err != nil {
		return engine.Observation{Err: err}
	}
	there, _, err := s.path(p)
	if err != nil {
		return engine.Observation{Err: err}
	}
	var evidence []string
	obs := engine.Observation{Verdict: "allowed"}
	frame, err := packet.Build(fwd)
	if err != nil {
		return engine.Observation{Err: err}
	}
	for i, h := range there {
		res, err := h.node.dp.Run(h.hook, frame)
		if err != nil {
			return engine.Observation{Err: err}
		}
		redirect := s.collect(&obs, &evidence, "request", h, res)
		if res.Code == datapath.TCActShot {
			return s.dropped(obs, evidence, res)
		}
		if redirect == 0 {
			frame = res.Out
			continue
		}
		s.throughProxy(p, fwd, h, res, redirect, there[i+1:], &obs, &evidence)
		obs.Evidence = strings.Join(evidence, "\n")
		return obs
	}
	// No proxy on the way: the connection is a plain one, reply included.
	o := s.Probe(context.Background(), conn)
	if o.Verdict == "allowed" && p.HTTP != nil {
		o.Status = workload.Status(serverOf(p), p.HTTP.Method, p.HTTP.Path, p.HTTP.Header("Authorization"))
	}
	return o
}

// collect adds a hook's events to the observation and returns the proxy
// port of a REDIRECTED event (0 if none).
func (s *session) collect(obs *engine.Observation, evidence *[]string, leg string, h hop, res datapath.RunResult) uint16 {
	var port uint16
	for _, ev := range res.Events {
		obs.Flows = append(obs.Flows, s.flow(ev))
		*evidence = append(*evidence, fmt.Sprintf("%s %s@%s: %s%s", leg, h.hook, h.pod, ev, s.originsSuffix(ev.Cookie)))
		if ev.Verdict == datapath.VerdictRedirected {
			port = ev.ProxyPort
		}
	}
	return port
}

// redirectPort is the proxy port a hook redirected its frame to (0 if none).
func redirectPort(res datapath.RunResult) uint16 {
	for _, ev := range res.Events {
		if ev.Verdict == datapath.VerdictRedirected {
			return ev.ProxyPort
		}
	}
	return 0
}

func (s *session) dropped(obs engine.Observation, evidence []string, res datapath.RunResult) engine.Observation {
	obs.Verdict = "dropped"
	if n := len(res.Events); n > 0 {
		obs.Reason = res.Events[n-1].Reason.String()
	}
	obs.Evidence = strings.Join(evidence, "\n")
	return obs
}

// throughProxy finishes a request the hook h redirected to port.
func (s *session) throughProxy(p engine.Probe, fwd packet.Spec, h hop, res datapath.RunResult, port uint16, rest []hop,
	obs *engine.Observation, evidence *[]string) {
	dir := policy.Egress
	if h.hook == datapath.ToContainer {
		dir = policy.Ingress
		// The turned-back frame must find the proxy's socket at the
		// device's ingress (from_container).
		dev, _ := h.node.dp.DeviceOf(s.epIDs[h.pod])
		back, err := h.node.dp.RunMarked(datapath.FromContainer, dev, datapath.ProxyMarkToProxy(port), res.Out)
		if err != nil {
			obs.Err = err
			return
		}
		if back.Code == datapath.TCActShot {
			*obs = s.dropped(*obs, *evidence, back)
			s.collect(obs, evidence, "to-proxy", hop{node: h.node, hook: datapath.FromContainer, pod: h.pod}, back)
			return
		}
	}
	client := netip.AddrPortFrom(fwd.Src, fwd.SrcPort)
	orig := netip.AddrPortFrom(fwd.Dst, fwd.DstPort)
	table := &proxy.Table{CT: h.node.dp}
	table.Set(s.resolved, s.states[h.node.name], s.locals[h.node.name])
	var req *http.Request
	var conn *proxy.Resolved
	var err error
	var allowed bool
	var what string
	switch {
	case port == policy.ProxyPortKafkaIngress || port == policy.ProxyPortKafkaEgress:
		// The Kafka proxy: the probe's request as kmsg reads it.
		if conn, err = table.ResolveEntry(dir, client, orig); err != nil {
			obs.Err = fmt.Errorf("the %s Kafka proxy on %s: %w", dir, h.node.name, err)
			return
		}
		what = "a request that is no Kafka request"
		if p.Kafka != nil {
			wire, err := p.Kafka.Wire()
			if err != nil {
				obs.Err = err
				return
			}
			kreq, err := kafkaproxy.ParseRequest(wire, nil)
			if err != nil {
				obs.Err = err
				return
			}
			allowed = kafkaproxy.Compile(conn.Entry.Kafka, conn.Entry.L7Wildcard).Allows(kreq)
			what = fmt.Sprintf("Kafka %s topic %q client %q", p.Kafka.APIKey, p.Kafka.Topic, p.Kafka.ClientID)
		}
	case port == policy.ProxyPortTLSIngress || port == policy.ProxyPortTLSEgress:
		// The TLS proxy: the ClientHello's server name decides.
		if conn, err = table.ResolveEntry(dir, client, orig); err != nil {
			obs.Err = fmt.Errorf("the %s TLS proxy on %s: %w", dir, h.node.name, err)
			return
		}
		name := ""
		if p.TLS != nil {
			name = p.TLS.ServerName
		}
		allowed = p.TLS != nil && tlsproxy.Allows(conn.Entry, name)
		what = fmt.Sprintf("TLS server name %q", name)
	default:
		hc, err := table.Resolve(dir, client, orig)
		if err != nil {
			obs.Err = fmt.Errorf("the %s proxy on %s: %w", dir, h.node.name, err)
			return
		}
		conn = &proxy.Resolved{EndpointID: hc.EndpointID, SrcIdentity: hc.SrcIdentity, DstIdentity: hc.DstIdentity, Policies: hc.Policies}
		if p.TLS != nil || p.HTTP == nil {
			// A handshake is no HTTP request: the HTTP proxy answers 400 and
			// closes, and the client's handshake fails.
			what = "a TLS handshake"
			break
		}
		if req, err = httpRequest(p.HTTP, orig); err != nil {
			obs.Err = err
			return
		}
		allowed = hc.Matcher.Allows(req)
		what = req.Method + " " + req.RequestURI
	}
	verdict := "forwarded"
	if !allowed {
		verdict = "dropped"
	}
	obs.Flows = append(obs.Flows, engine.Flow{Direction: dir.String(), Verdict: verdict, Policies: conn.Policies,
		SrcID: conn.SrcIdentity, DstID: conn.DstIdentity})
	*evidence = append(*evidence, fmt.Sprintf("%s proxy@%s: %s %s by %s", dir, h.node.name, what,
		map[bool]string{true: "allowed", false: "denied"}[allowed], strings.Join(conn.Policies, ",")))
	if !allowed {
		obs.Verdict = "l7-denied"
		if req != nil {
			obs.Status = http.StatusForbidden
		}
		return
	}
	// The proxy's upstream connection, to the original destination with the
	// proxy's mark, from the client's own address and port
	// (datapath.ProxyUpstreamDialer), except an egress proxy's to a pod of
	// its own node, which leaves from the node's address. An egress proxy's
	// reaches the destination's hook (if it is a pod); an ingress proxy's,
	// the pod it redirected from, on the flow's own tuple.
	var next *hop
	var seen netip.Addr // the client address the server sees
	mark := datapath.ProxyMarkIngress()
	if dir == policy.Ingress {
		next = &hop{node: h.node, hook: datapath.ToContainer, pod: h.pod}
	} else if len(rest) > 0 {
		next = &rest[0]
		if mark, err = datapath.ProxyMarkEgress(conn.SrcIdentity); err != nil {
			obs.Err = err
			return
		}
	}
	if next != nil {
		up := fwd
		if dir == policy.Egress && next.node == h.node {
			up.SrcPort = s.sourcePort()
			for _, a := range s.nodeIPs[h.node.name] {
				if a.Is4() == fwd.Dst.Is4() {
					up.Src = a
				}
			}
		}
		seen = up.Src
		upFrame, err := packet.Build(up)
		if err != nil {
			obs.Err = err
			return
		}
		var r datapath.RunResult
		dev, _ := next.node.dp.DeviceOf(s.epIDs[next.pod])
		if next.node == h.node {
			r, err = next.node.dp.RunMarked(datapath.ToContainer, dev, uint32(mark), upFrame)
		} else {
			r, err = next.node.dp.RunOn(datapath.ToContainer, dev, upFrame) // the mark does not cross nodes
		}
		if err != nil {
			obs.Err = err
			return
		}
		redirect := s.collect(obs, evidence, "upstream", *next, r)
		if r.Code == datapath.TCActShot {
			*obs = s.dropped(*obs, *evidence, r)
			return
		}
		if redirect != 0 {
			// The destination's own ingress proxy judges the request too.
			s.throughProxy(p, up, *next, r, redirect, nil, obs, evidence)
			return
		}
	}
	obs.SourceIP = seen
	// The proxy may have rewritten the request's headers (headerMatches).
	switch {
	case req != nil:
		obs.Status = workload.Status(serverOf(p), req.Method, p.HTTP.Path, req.Header.Get("Authorization"))
	case p.HTTP != nil:
		obs.Status = workload.Status(serverOf(p), p.HTTP.Method, p.HTTP.Path, p.HTTP.Header("Authorization"))
	}
}

// serverOf is what the probe's destination answers as: a pod's image names
// it (workload.ServerOfImage); anything else is the echo.
func serverOf(p engine.Probe) string {
	if pod := p.To.Pod; pod != nil && len(pod.Spec.Containers) > 0 {
		return workload.ServerOfImage(pod.Spec.Containers[0].Image)
	}
	return workload.ServerEcho
}

// httpRequest is the probe's request as the proxy reads it off the wire.
func httpRequest(h *engine.HTTPRequest, orig netip.AddrPort) (*http.Request, error) {
	return http.ReadRequest(bufio.NewReader(bytes.NewReader(h.Wire(orig))))
}

var _ httpproxy.Resolver = (*proxy.Table)(nil)
