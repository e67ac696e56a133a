package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/kestrelnet/kestrel/scenarios/engine"
	"github.com/kestrelnet/kestrel/sim/network"
	"github.com/kestrelnet/kestrel/sim/workload"
)

// A connection that does not complete in this time counts as dropped.
const probeTimeout = 1500 * time.Millisecond

// simRanges are the only addresses sim routes: pods, the underlay, services,
// in both families. Probes to anything else would leave the machine, so
// they are not sent.
var simRanges = slices.Concat(network.PodSupernets(), network.UnderlayNets(), []netip.Prefix{
	netip.MustParsePrefix("10.96.0.0/16"),
	netip.MustParsePrefix("fd00:10:96::/112"),
})

func (s *session) Probe(ctx context.Context, p engine.Probe) engine.Observation {
	if pe, ok := s.r.backend.(PodExec); ok {
		return s.execBatch(ctx, pe, []engine.Probe{p})[0]
	}
	return s.r.probe(ctx, s, p)
}

// ProbeBatch runs independent probes at once: a dropped probe costs a timeout.
func (s *session) ProbeBatch(ctx context.Context, ps []engine.Probe) []engine.Observation {
	if pe, ok := s.r.backend.(PodExec); ok {
		return s.execBatch(ctx, pe, ps)
	}
	out := make([]engine.Observation, len(ps))
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range ps {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = s.Probe(ctx, ps[i])
		}()
	}
	wg.Wait()
	return out
}

// Reasons a probe is not run in sim mode; the report counts probes by reason.
const (
	skipPacket  = "single-packet probes need unit mode (a live socket cannot send a bare SYN-ACK)"
	skipNoSCTP  = "this kernel has no SCTP"
	skipSCTP    = "SCTP probes are not built in sim mode yet"
	skipOutside = "a world source needs the node it enters the cluster at (from: {ip, via: NODE}) in sim mode"
)

// sctpSkipReason says why an SCTP probe is skipped: the kernel cannot open an
// SCTP socket, or (where it can) sim's probes do not speak SCTP yet. The
// kernel is asked once.
var sctpSkipReason = sync.OnceValue(func() string {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP)
	if err != nil {
		return skipNoSCTP
	}
	unix.Close(fd)
	return skipSCTP
})

// origin is where a probe's socket lives: a namespace, and for a world
// source its address and the mark that routes it into its node.
type origin struct {
	netns string
	src   netip.Addr // bound when valid
	mark  uint32     // SO_MARK when non-zero
}

// describe prefixes a probe's evidence with where it was sent from.
func (o origin) describe(p engine.Probe, evidence string) string {
	if o.mark != 0 {
		return fmt.Sprintf("from netns %s, source %s, mark %d (into %s): %s", o.netns, o.src, o.mark, p.From.Via, evidence)
	}
	return fmt.Sprintf("from netns %s: %s", o.netns, evidence)
}

// control sets the socket's mark (network.ViaMark) before it connects.
func (o origin) control(_, _ string, c syscall.RawConn) error {
	if o.mark == 0 {
		return nil
	}
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(o.mark))
	})
	return errors.Join(err, serr)
}

// dial connects from the origin: in its namespace, from its address when
// set, with its mark (a world source enters at its via node).
func (o origin) dial(ctx context.Context, target string) (net.Conn, error) {
	var conn net.Conn
	err := network.Do(o.netns, func() error {
		var err error
		d := net.Dialer{Timeout: probeTimeout, Control: o.control}
		if o.src.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: o.src.AsSlice()}
		}
		conn, err = d.DialContext(ctx, "tcp", target)
		return err
	})
	return conn, err
}

func (r *Runner) probe(ctx context.Context, s *session, p engine.Probe) engine.Observation {
	nodes := s.nodes
	worldSource := p.From.Pod == nil && p.From.Node == ""
	switch {
	case p.Exchange == "packet":
		return engine.Observation{Skipped: skipPacket}
	case strings.EqualFold(p.Protocol, "SCTP"):
		return engine.Observation{Skipped: sctpSkipReason()}
	case worldSource && p.From.Via == "":
		return engine.Observation{Skipped: skipOutside, Evidence: "source " + p.From.IP.String()}
	case !r.backend.Outside() && needsSocketLB(p) && !r.servesNodeProcesses(s, p.From.Node):
		return engine.Observation{Skipped: skipNoSocketLB, Evidence: r.backend.Mode() + " mode, from node " + p.From.Node}
	case p.DNS != nil:
		return r.dnsProbe(ctx, s, p)
	case p.Resolver != nil:
		return r.fqdnProbe(ctx, s, p)
	}
	to := p.To.IP
	if p.To.Node != "" {
		ip, err := nodes.hostIP(r.backend, p.To)
		if err != nil {
			return engine.Observation{Err: err}
		}
		to = ip
	}
	// A world source's packets go to its node whatever their destination,
	// and the nodes route the world to the outside host: nothing leaves
	// the machine. A world address no spec.world server holds gets a
	// stand-in server there, so the probe is sent all the same.
	if !worldSource && p.To.Frontend == "" && !r.backend.Routed(to) && !s.serves(to, p.Port, p.Protocol) {
		if !r.hasOutside() {
			// No outside host to stand in for the world.
			return engine.Observation{Skipped: skipNoOutside, Evidence: "destination " + to.String()}
		}
		s.worldMu.Lock()
		w, err := s.worldLocked("a stand-in for " + to.String())
		if err == nil {
			err = w.standIn(to, p.Port, p.Protocol)
		}
		s.worldMu.Unlock()
		if err != nil {
			return engine.Observation{Err: err}
		}
	}
	from, src, err := r.origin(s, p)
	if err != nil {
		return engine.Observation{Err: err}
	}
	q := probeFlows{src: src, dst: to, port: p.Port, since: monotonicNow()}
	target := net.JoinHostPort(to.String(), strconv.Itoa(int(p.Port)))
	switch {
	case p.To.Service != "":
		q.backends = s.frontends[frontendKey(p)]
	case p.To.Frontend != "":
		q.backends = s.svcBackends[p.To.Frontend]
	}
	if via, ok := s.nodes[p.From.Via]; ok && worldSource && len(q.backends) > 0 {
		q.masq = []netip.Addr{r.backend.NodeIP(via, false), r.backend.NodeIP(via, true)}
	}
	bin, cgroup, inPod, err := r.podProcess(s, p.From, to)
	if err != nil {
		return engine.Observation{Err: err}
	}
	var verdict, evidence, answer string
	switch strings.ToUpper(p.Protocol) {
	case "TCP", "":
		q.protocol = protoTCP
		if p.Exchange == "request" {
			var status int
			var reply workload.HTTPReply
			if p.Kafka != nil {
				verdict, evidence = kafkaProbe(from, netip.AddrPortFrom(to, p.Port), p.Kafka)
			} else if p.TLS != nil {
				verdict, evidence, status = tlsProbe(from, netip.AddrPortFrom(to, p.Port), p.TLS, p.HTTP)
			} else {
				verdict, evidence, status, reply = httpProbe(from, netip.AddrPortFrom(to, p.Port), p.HTTP)
			}
			o := engine.Observation{Verdict: verdict, Status: status, Evidence: from.describe(p, evidence)}
			if verdict == "allowed" && reply.Pod != "" {
				o.Backend, o.SourceIP = s.answerOf(p, reply.Pod, reply.Client)
			}
			if verdict == "error" {
				o.Err = errors.New(evidence)
				return o
			}
			r.flows.observe(ctx, q, &o)
			return o
		}
		if inPod {
			verdict, evidence, answer = inPodProbe(bin, cgroup, from.netns, "tcp", target)
		} else {
			verdict, evidence, answer = tcpProbe(from, target)
		}
	case "UDP":
		q.protocol = protoUDP
		if inPod {
			verdict, evidence, answer = inPodProbe(bin, cgroup, from.netns, "udp", target)
		} else {
			verdict, evidence, answer = udpProbe(from, target)
		}
	case "ICMP", "ICMPV6":
		// The engine gives ICMP and ICMPv6 probes addresses of their family.
		q.protocol = protoICMP
		if to.Is6() {
			q.protocol = protoICMPv6
		}
		verdict, evidence = pingProbe(from, to)
	default:
		return engine.Observation{Skipped: p.Protocol + " probes are not available in sim mode yet"}
	}
	o := engine.Observation{Verdict: verdict, Evidence: from.describe(p, evidence)}
	if verdict == "allowed" {
		o.Backend, o.SourceIP = s.readAnswer(p, answer)
	}
	if verdict == "error" {
		o.Err = errors.New(evidence)
		return o
	}
	r.flows.observe(ctx, q, &o)
	return o
}

// readAnswer reads a server's answer, "<who> <port> <client>": the backend a
// service probe reached (when <who> is a pod), and the client address the
// server saw, in the scenario's addresses.
func (s *session) readAnswer(p engine.Probe, answer string) (backend string, client netip.Addr) {
	f := append(strings.Fields(answer), "", "", "")
	return s.answerOf(p, f[0], f[2])
}

// answerOf is what a server named in its answer (a line or an HTTP reply's
// JSON): the backend a service probe reached, when who is a pod, and the
// client address it saw, in the scenario's addresses.
func (s *session) answerOf(p engine.Probe, who, seen string) (backend string, client netip.Addr) {
	if (p.To.Service != "" || p.To.Frontend != "") && strings.Contains(who, "/") {
		backend = who
	}
	if a, err := netip.ParseAddr(seen); err == nil {
		client = s.scenarioAddr(a.Unmap())
	}
	return backend, client
}

// scenarioAddr maps a sim node's underlay address to the address the engine
// gave that scenario node; every other address is the same in both.
func (s *session) scenarioAddr(a netip.Addr) netip.Addr {
	if s.cluster == nil {
		return a
	}
	for name, idx := range s.nodes {
		if a != s.r.backend.NodeIP(idx, false) && a != s.r.backend.NodeIP(idx, true) {
			continue
		}
		for _, e := range s.cluster.NodeIPs[name] {
			if e.Is6() == a.Is6() {
				return e
			}
		}
	}
	return a
}

// serves reports whether a spec.world server answers at a for this probe.
func (s *session) serves(a netip.Addr, port uint16, proto string) bool {
	s.worldMu.Lock()
	defer s.worldMu.Unlock()
	return s.world != nil && s.world.serves(s.cluster, a, port, proto)
}

func inSim(a netip.Addr) bool {
	for _, p := range simRanges {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// origin is where a probe starts and its source address: a pod's or a
// node's namespace, or the outside host with the world source's address
// (added to it for the session) and the mark of its via node.
func (r *Runner) origin(s *session, p engine.Probe) (origin, netip.Addr, error) {
	switch {
	case p.From.Pod != nil:
		live, ok := r.live.pods[p.From.Pod.Namespace+"/"+p.From.Pod.Name]
		if !ok || live.uid == "" {
			return origin{}, netip.Addr{}, fmt.Errorf("pod %s/%s is not running", p.From.Pod.Namespace, p.From.Pod.Name)
		}
		ns, err := r.backend.PodNetns(live.uid)
		return origin{netns: ns}, p.From.IP, err
	case p.From.Node != "":
		idx, ok := s.nodes[p.From.Node]
		if !ok {
			return origin{}, netip.Addr{}, fmt.Errorf("node %q is not in the scenario's nodes", p.From.Node)
		}
		src, err := s.nodes.hostIP(r.backend, p.From)
		if err != nil {
			return origin{}, src, err
		}
		ns, err := r.backend.NodeNetns(idx)
		return origin{netns: ns}, src, err
	}
	idx, ok := s.nodes[p.From.Via]
	if !ok {
		return origin{}, netip.Addr{}, fmt.Errorf("via node %q is not in the scenario's nodes", p.From.Via)
	}
	s.worldMu.Lock()
	w, err := s.worldLocked("a probe from the world via " + p.From.Via)
	if err == nil {
		err = w.addAddr(p.From.IP)
	}
	s.worldMu.Unlock()
	if err != nil {
		return origin{}, netip.Addr{}, err
	}
	return origin{netns: w.host.Netns(), src: p.From.IP, mark: w.host.ViaMark(idx)}, p.From.IP, nil
}

// verdictOf maps a socket error to a probe verdict.
func verdictOf(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return "allowed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "rejected"
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		return "dropped"
	}
	return "error"
}

// tcpProbe connects, sends a line and reads the server's answer: the verdict,
// the evidence, and the answer itself.
func tcpProbe(from origin, target string) (string, string, string) {
	conn, err := from.dial(context.Background(), target)
	if err != nil {
		return verdictOf(err), fmt.Sprintf("TCP connect %s: %v", target, err), ""
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := conn.Write([]byte("kestrel-probe\n")); err != nil {
		return verdictOf(err), fmt.Sprintf("TCP write %s: %v", target, err), ""
	}
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil {
		return verdictOf(err), fmt.Sprintf("TCP read %s: %v", target, err), ""
	}
	answer := strings.TrimSpace(string(buf[:n]))
	return "allowed", fmt.Sprintf("TCP %s answered %q", target, answer), answer
}

func udpProbe(from origin, target string) (string, string, string) {
	var conn net.Conn
	if err := network.Do(from.netns, func() error {
		var err error
		d := net.Dialer{Control: from.control}
		if from.src.IsValid() {
			d.LocalAddr = &net.UDPAddr{IP: from.src.AsSlice()}
		}
		conn, err = d.Dial("udp", target)
		return err
	}); err != nil {
		return "error", fmt.Sprintf("UDP socket for %s: %v", target, err), ""
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := conn.Write([]byte("kestrel-probe\n")); err != nil {
		return verdictOf(err), fmt.Sprintf("UDP send %s: %v", target, err), ""
	}
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil {
		return verdictOf(err), fmt.Sprintf("UDP %s: %v", target, err), ""
	}
	answer := strings.TrimSpace(string(buf[:n]))
	return "allowed", fmt.Sprintf("UDP %s answered %q", target, answer), answer
}

// echoKind is what an echo exchange looks like in one family.
type echoKind struct {
	network, listen string
	proto           int // for icmp.ParseMessage
	request, reply  icmp.Type
}

var (
	echo4 = echoKind{"ip4:icmp", "0.0.0.0", 1, ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply}
	// The kernel fills in an ICMPv6 raw socket's checksum, so no pseudo
	// header is needed to marshal the request.
	echo6 = echoKind{"ip6:ipv6-icmp", "::", 58, ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply}
)

func pingProbe(from origin, to netip.Addr) (string, string) {
	kind := echo4
	if to.Is6() {
		kind = echo6
	}
	listen := kind.listen
	if from.src.IsValid() {
		listen = from.src.String()
	}
	var pc net.PacketConn
	if err := network.Do(from.netns, func() error {
		var err error
		lc := net.ListenConfig{Control: from.control}
		pc, err = lc.ListenPacket(context.Background(), kind.network, listen)
		return err
	}); err != nil {
		return "error", fmt.Sprintf("ICMP socket: %v", err)
	}
	defer pc.Close()
	id := os.Getpid()&0xffff ^ int(time.Now().UnixNano()&0xffff)
	msg := icmp.Message{Type: kind.request, Body: &icmp.Echo{ID: id, Seq: 1, Data: []byte("kestrel")}}
	b, _ := msg.Marshal(nil)
	if _, err := pc.WriteTo(b, &net.IPAddr{IP: to.AsSlice()}); err != nil {
		return verdictOf(err), fmt.Sprintf("ICMP echo to %s: %v", to, err)
	}
	deadline := time.Now().Add(probeTimeout)
	buf := make([]byte, 1500)
	for {
		pc.SetReadDeadline(deadline)
		n, peer, err := pc.ReadFrom(buf)
		if err != nil {
			return verdictOf(err), fmt.Sprintf("ICMP echo to %s: %v", to, err)
		}
		m, err := icmp.ParseMessage(kind.proto, buf[:n])
		if err != nil || m.Type != kind.reply {
			continue // neighbour discovery and others' echoes share the socket
		}
		if e, ok := m.Body.(*icmp.Echo); ok && e.ID == id && peer.String() == to.String() {
			return "allowed", fmt.Sprintf("ICMP echo reply from %s", to)
		}
	}
}
