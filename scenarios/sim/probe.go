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
	return s.r.probe(ctx, s, p)
}

// ProbeBatch runs independent probes at once: a dropped probe costs a timeout.
func (s *session) ProbeBatch(ctx context.Context, ps []engine.Probe) []engine.Observation {
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
	skipOutside = "sim has no hosts outside the cluster to send from"
	skipWorld   = "sim sends no probe to addresses outside the cluster (pod-to-world is blocked by design here)"
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

func (r *Runner) probe(ctx context.Context, s *session, p engine.Probe) engine.Observation {
	nodes := s.nodes
	switch {
	case p.Exchange == "packet":
		return engine.Observation{Skipped: skipPacket}
	case strings.EqualFold(p.Protocol, "SCTP"):
		return engine.Observation{Skipped: sctpSkipReason()}
	case p.From.Pod == nil && p.From.Node == "":
		return engine.Observation{Skipped: skipOutside, Evidence: "source " + p.From.IP.String()}
	}
	to := p.To.IP
	if p.To.Node != "" {
		ip, err := nodes.hostIP(p.To)
		if err != nil {
			return engine.Observation{Err: err}
		}
		to = ip
	}
	if !inSim(to) {
		return engine.Observation{Skipped: skipWorld, Evidence: "destination " + to.String()}
	}
	ns, err := r.sourceNetns(nodes, p.From)
	if err != nil {
		return engine.Observation{Err: err}
	}
	src := p.From.IP
	if p.From.Pod == nil {
		if src, err = nodes.hostIP(p.From); err != nil {
			return engine.Observation{Err: err}
		}
	}
	q := probeFlows{src: src, dst: to, port: p.Port, since: monotonicNow()}
	target := net.JoinHostPort(to.String(), strconv.Itoa(int(p.Port)))
	if p.To.Service != "" {
		q.backends = s.frontends[frontendKey(p)]
	}
	var verdict, evidence, answer string
	switch strings.ToUpper(p.Protocol) {
	case "TCP", "":
		q.protocol = protoTCP
		verdict, evidence, answer = tcpProbe(ns, target)
	case "UDP":
		q.protocol = protoUDP
		verdict, evidence, answer = udpProbe(ns, target)
	case "ICMP", "ICMPV6":
		// The engine gives ICMP and ICMPv6 probes addresses of their family.
		q.protocol = protoICMP
		if to.Is6() {
			q.protocol = protoICMPv6
		}
		verdict, evidence = pingProbe(ns, to)
	default:
		return engine.Observation{Skipped: p.Protocol + " probes are not available in sim mode yet"}
	}
	o := engine.Observation{Verdict: verdict, Evidence: fmt.Sprintf("from netns %s: %s", ns, evidence)}
	if p.To.Service != "" && verdict == "allowed" {
		// The servers answer "<namespace>/<pod> <port>": the pod the
		// service sent the connection to.
		o.Backend, _, _ = strings.Cut(answer, " ")
	}
	if verdict == "error" {
		o.Err = errors.New(evidence)
		return o
	}
	r.flows.observe(ctx, q, &o)
	return o
}

func inSim(a netip.Addr) bool {
	for _, p := range simRanges {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// sourceNetns names the namespace a probe starts in.
func (r *Runner) sourceNetns(nodes nodeMap, from engine.Peer) (string, error) {
	if from.Pod == nil {
		idx, ok := nodes[from.Node]
		if !ok {
			return "", fmt.Errorf("node %q is not in the scenario's nodes", from.Node)
		}
		return network.NodeNetns(r.name, idx), nil
	}
	live, ok := r.live.pods[from.Pod.Namespace+"/"+from.Pod.Name]
	if !ok || live.uid == "" {
		return "", fmt.Errorf("pod %s/%s is not running", from.Pod.Namespace, from.Pod.Name)
	}
	return network.PodNetns(r.name, live.uid), nil
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
func tcpProbe(ns, target string) (string, string, string) {
	var conn net.Conn
	err := network.Do(ns, func() error {
		var err error
		d := net.Dialer{Timeout: probeTimeout}
		conn, err = d.Dial("tcp", target)
		return err
	})
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

func udpProbe(ns, target string) (string, string, string) {
	var conn net.Conn
	if err := network.Do(ns, func() error {
		var err error
		conn, err = net.Dial("udp", target)
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

func pingProbe(ns string, to netip.Addr) (string, string) {
	kind := echo4
	if to.Is6() {
		kind = echo6
	}
	var pc *icmp.PacketConn
	if err := network.Do(ns, func() error {
		var err error
		pc, err = icmp.ListenPacket(kind.network, kind.listen)
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
