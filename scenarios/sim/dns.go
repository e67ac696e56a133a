package sim

// The cluster DNS of a sim scenario (spec.dns): its server pod's namespace
// holds a DNS server on port 53 (UDP and TCP) that this process serves, as
// it serves the world servers on the outside host, answering from the
// scenario's records and Services (sim/clusterdns). Probes query it from
// the client pod's namespace, through the node's real datapath and DNS
// proxy.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/kestrelnet/kestrel/scenarios/engine"
	"github.com/kestrelnet/kestrel/sim/clusterdns"
	"github.com/kestrelnet/kestrel/sim/network"
)

// dnsServer serves one namespace's port 53.
type dnsServer struct {
	netns   string
	zone    atomic.Pointer[clusterdns.Zone]
	servers []*dns.Server
}

func (d *dnsServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	w.WriteMsg(d.zone.Load().Answer(req))
}

func startDNSServer(netns string) (*dnsServer, error) {
	d := &dnsServer{netns: netns}
	var pc net.PacketConn
	var ln net.Listener
	err := network.Do(netns, func() error {
		var err error
		if pc, err = net.ListenPacket("udp", ":53"); err != nil {
			return err
		}
		ln, err = net.Listen("tcp", ":53")
		return err
	})
	if err != nil {
		if pc != nil {
			pc.Close()
		}
		return nil, fmt.Errorf("cluster DNS in %s: %w", netns, err)
	}
	d.servers = []*dns.Server{{PacketConn: pc, Handler: d}, {Listener: ln, Handler: d}}
	for _, s := range d.servers {
		go s.ActivateAndServe()
	}
	return d, nil
}

func (d *dnsServer) close() {
	for _, s := range d.servers {
		s.Shutdown()
	}
}

// syncDNS runs the cluster DNS in its server pod's namespace with the zone
// of c, or stops it when c has none.
func (s *session) syncDNS(c *engine.Cluster) error {
	if c.DNS == nil {
		s.stopDNS()
		return nil
	}
	live, ok := s.r.live.pods[c.DNS.Server]
	if !ok || live.uid == "" {
		return fmt.Errorf("the cluster DNS pod %s is not running", c.DNS.Server)
	}
	netns := network.PodNetns(s.r.name, live.uid)
	if s.dns != nil && s.dns.netns != netns {
		s.stopDNS()
	}
	if s.dns == nil {
		d, err := startDNSServer(netns)
		if err != nil {
			return err
		}
		s.dns = d
	}
	svcs, slices, err := engine.ServiceObjects(c)
	if err != nil {
		return err
	}
	s.dns.zone.Store(clusterdns.NewZone(c.DNS.Records, svcs, slices))
	return nil
}

func (s *session) stopDNS() {
	if s.dns != nil {
		s.dns.close()
		s.dns = nil
	}
}

// dnsQuery asks server from the namespace ns over proto: REFUSED (the DNS
// proxy's answer to a denied query) is l7-denied, an answer is allowed
// with its addresses, no answer is dropped.
func dnsQuery(ns, proto string, server netip.AddrPort, q *engine.DNSRequest) (string, string, []netip.Addr) {
	qt := dns.TypeA
	if q.Type == "AAAA" {
		qt = dns.TypeAAAA
	}
	m := new(dns.Msg)
	m.SetQuestion(q.Query, qt)
	var conn net.Conn
	err := network.Do(ns, func() error {
		var err error
		conn, err = net.DialTimeout(proto, server.String(), probeTimeout)
		return err
	})
	what := fmt.Sprintf("DNS %s %s over %s to %s", q.Type, q.Query, strings.ToUpper(proto), server)
	if err != nil {
		return verdictOf(err), fmt.Sprintf("%s: %v", what, err), nil
	}
	defer conn.Close()
	co := &dns.Conn{Conn: conn}
	co.SetDeadline(time.Now().Add(2 * probeTimeout))
	if err := co.WriteMsg(m); err != nil {
		return verdictOf(err), fmt.Sprintf("%s: %v", what, err), nil
	}
	resp, err := co.ReadMsg()
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, net.ErrClosed) {
			return "dropped", fmt.Sprintf("%s: %v", what, err), nil
		}
		return verdictOf(err), fmt.Sprintf("%s: %v", what, err), nil
	}
	var ips []netip.Addr
	for _, rr := range resp.Answer {
		switch v := rr.(type) {
		case *dns.A:
			if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
				ips = append(ips, a)
			}
		case *dns.AAAA:
			if a, ok := netip.AddrFromSlice(v.AAAA); ok {
				ips = append(ips, a)
			}
		}
	}
	ev := fmt.Sprintf("%s: %s %v", what, dns.RcodeToString[resp.Rcode], ips)
	if resp.Rcode == dns.RcodeRefused {
		return "l7-denied", ev, nil
	}
	return "allowed", ev, ips
}

// dnsProbe is a dns request from a pod.
func (r *Runner) dnsProbe(ctx context.Context, s *session, p engine.Probe) engine.Observation {
	from, src, err := r.origin(s, p)
	if err != nil {
		return engine.Observation{Err: err}
	}
	if !inSim(p.To.IP) && !s.serves(p.To.IP, p.Port, p.Protocol) {
		// A resolver outside the cluster: a stand-in on the outside host,
		// as for any probe to the world (probe.go).
		s.worldMu.Lock()
		w, err := s.worldLocked("a stand-in resolver " + p.To.IP.String())
		if err == nil {
			err = w.standIn(p.To.IP, p.Port, p.Protocol)
		}
		s.worldMu.Unlock()
		if err != nil {
			return engine.Observation{Err: err}
		}
	}
	q := probeFlows{src: src, dst: p.To.IP, port: p.Port, since: monotonicNow(), protocol: protoUDP}
	proto := "udp"
	if strings.EqualFold(p.Protocol, "TCP") {
		proto, q.protocol = "tcp", protoTCP
	}
	verdict, evidence, answer := dnsQuery(from.netns, proto, netip.AddrPortFrom(p.To.IP, p.Port), p.DNS)
	o := engine.Observation{Verdict: verdict, Answer: answer, Evidence: fmt.Sprintf("from netns %s: %s", from.netns, evidence)}
	if verdict == "error" {
		o.Err = errors.New(evidence)
		return o
	}
	r.flows.observe(ctx, q, &o)
	return o
}

// fqdnProbe resolves the target's name through the cluster DNS from the
// pod, then probes the address it must have resolved to.
func (r *Runner) fqdnProbe(ctx context.Context, s *session, p engine.Probe) engine.Observation {
	qtype := "A"
	if p.To.IP.Is6() {
		qtype = "AAAA"
	}
	q := engine.Probe{Scenario: p.Scenario, Name: p.Name + "/dns", From: p.From, To: *p.Resolver, Protocol: "UDP", Port: 53,
		Exchange: "request", DNS: &engine.DNSRequest{Query: p.To.FQDN, Type: qtype}}
	res := r.dnsProbe(ctx, s, q)
	res.Evidence = fmt.Sprintf("resolve %s: %s", p.To.FQDN, res.Evidence)
	if res.Err != nil || res.Skipped != "" || res.Verdict != "allowed" {
		return res
	}
	if !slices.Contains(res.Answer, p.To.IP) {
		res.Err = fmt.Errorf("%s resolved to %v, not %s", p.To.FQDN, res.Answer, p.To.IP)
		return res
	}
	p.Resolver = nil
	o := r.probe(ctx, s, p)
	o.Evidence = res.Evidence + "; then " + o.Evidence
	return o
}
