package dnsproxy

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
)

type fixedResolver struct{ conn *Connection }

func (r fixedResolver) ResolveDNS(policy.Direction, string, netip.AddrPort, netip.AddrPort) (*Connection, error) {
	return r.conn, nil
}

const rigPodIdentity = 300

// rig is a pod attached to a loaded datapath whose DNS (UDP and TCP 53) is
// redirected to the egress DNS proxy in the node's namespace. The server the
// pod asks, 192.0.2.53:53, is reached through the proxy's Dial, which
// records the address it was asked for and reaches a real DNS server on the
// node's loopback: the node cannot hold 192.0.2.53:53 itself, since the
// proxy answers from that address.
type rig struct {
	n      *datapathtest.PodNetwork
	server netip.AddrPort

	mu      sync.Mutex
	records []Record
	dialed  []string
	learned []Answer
	// learnDone is when Learn returned; the pod must get its answer after.
	learnDone time.Time
}

func newRig(t *testing.T, sels []policy.FQDNSelector) *rig {
	d, err := datapath.Load(datapath.Config{MonitorAggregation: datapath.MonitorAggregationNone})
	if err != nil {
		datapathtest.SkipOrFail(t, err)
	}
	t.Cleanup(func() { d.Close() })
	n := datapathtest.NewPodNetwork(t, "kestrel-dns", netip.MustParseAddr("10.202.0.1"), netip.MustParseAddr("10.202.0.2"))
	var links *datapath.PodDeviceLinks
	n.In(t, n.Node, func() { links, err = d.AttachPodDevice(n.HostIfindex, "") })
	must(t, err)
	t.Cleanup(func() { links.Close() })
	must(t, d.SyncIPCache([]datapath.IPCacheEntry{{Prefix: netip.PrefixFrom(n.PodIP, 32), Identity: rigPodIdentity}}))
	must(t, d.UpsertEndpoint(n.Endpoint(1, rigPodIdentity, true)))
	must(t, d.SetPolicy(1, []datapath.PolicyEntry{
		{Direction: datapath.Egress, Protocol: 17, PortLo: 53, Action: datapath.PolicyRedirect, ProxyPort: policy.ProxyPortDNSEgress},
		{Direction: datapath.Egress, Protocol: 6, PortLo: 53, Action: datapath.PolicyRedirect, ProxyPort: policy.ProxyPortDNSEgress},
	}))
	r := &rig{n: n, server: netip.MustParseAddrPort("192.0.2.53:53")}

	hn, err := netlink.NewHandleAt(n.Node)
	must(t, err)
	defer hn.Close()
	must(t, datapath.InstallProxyRouting(hn))
	n.In(t, n.Node, func() { must(t, datapath.ProxySysctls()) })
	hp, err := netlink.NewHandleAt(n.Pod)
	must(t, err)
	defer hp.Close()
	eth, err := hp.LinkByName("eth0")
	must(t, err)
	must(t, hp.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: &net.IPNet{IP: r.server.Addr().AsSlice(), Mask: net.CIDRMask(32, 32)}, Gw: n.NodeIP.AsSlice()}))

	// The real server, on the node's loopback.
	var upUDP net.PacketConn
	var upTCP, proxyTCP net.Listener
	var proxyUDP *net.UDPConn
	n.In(t, n.Node, func() {
		lo, err := hn.LinkByName("lo")
		must(t, err)
		must(t, hn.LinkSetUp(lo))
		upUDP, err = net.ListenPacket("udp4", "127.0.0.1:5353")
		must(t, err)
		upTCP, err = net.Listen("tcp4", "127.0.0.1:5353")
		must(t, err)
		proxyUDP, err = ListenUDP(context.Background(), "udp4", policy.ProxyPortDNSEgress)
		must(t, err)
		proxyTCP, err = datapath.ListenProxy(context.Background(), policy.ProxyPortDNSEgress)
		must(t, err)
	})
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.IPv4(203, 0, 113, 7)})
		w.WriteMsg(m)
	})
	for _, s := range []*dns.Server{{PacketConn: upUDP, Handler: h}, {Listener: upTCP, Handler: h}} {
		go s.ActivateAndServe()
		t.Cleanup(func() { s.Shutdown() })
	}

	rules, err := Compile(sels, false)
	must(t, err)
	mark, err := datapath.ProxyMarkEgress(rigPodIdentity)
	must(t, err)
	dial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		r.mu.Lock()
		r.dialed = append(r.dialed, network+" "+addr)
		r.mu.Unlock()
		err = inNS(n.Node, func() error {
			c, err = datapath.ProxyDialer(mark).DialContext(ctx, network, "127.0.0.1:5353")
			return err
		})
		return c, err
	}
	p := &Server{Direction: policy.Egress, Resolver: fixedResolver{&Connection{Rules: rules, Dial: dial, EndpointID: 1}},
		InNamespace: func(f func() error) error { return inNS(n.Node, f) },
		Learn: func(ep uint32, as []Answer) error {
			time.Sleep(100 * time.Millisecond) // a regeneration takes a while
			r.mu.Lock()
			r.learned = append(r.learned, as...)
			r.learnDone = time.Now()
			r.mu.Unlock()
			return nil
		},
		Observe: func(rec Record) { r.mu.Lock(); r.records = append(r.records, rec); r.mu.Unlock() }}
	go p.ServeUDP(proxyUDP)
	go p.ServeTCP(proxyTCP)
	t.Cleanup(func() { proxyUDP.Close(); proxyTCP.Close() })
	return r
}

// ask sends a query from the pod to the server over proto and returns the
// answer and when it arrived. The client's socket is connected to the
// server, so an answer from any other address is never read.
func (r *rig) ask(t *testing.T, proto, name string) (*dns.Msg, time.Time) {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	var c net.Conn
	var err error
	r.n.In(t, r.n.Pod, func() { c, err = net.DialTimeout(proto, r.server.String(), 2*time.Second) })
	must(t, err)
	defer c.Close()
	co := &dns.Conn{Conn: c}
	co.SetDeadline(time.Now().Add(3 * time.Second))
	must(t, co.WriteMsg(q))
	m, err := co.ReadMsg()
	if err != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		t.Fatalf("%s query for %s: %v (decisions %+v, upstream dials %v)", proto, name, err, r.records, r.dialed)
	}
	return m, time.Now()
}

// A pod's queries over UDP and TCP reach the proxy through the datapath's
// redirect: an allowed one is forwarded to the server the pod asked and
// its answer, from that server's address, arrives only after the answered
// addresses were learned; a denied one is answered REFUSED, and nothing is
// forwarded for it.
func TestDNSProxyThroughTheDatapath(t *testing.T) {
	r := newRig(t, []policy.FQDNSelector{{MatchPattern: "*.cilium.io"}, {MatchName: "one.one.one.one"}})
	for _, proto := range []string{"udp", "tcp"} {
		m, at := r.ask(t, proto, "one.one.one.one.")
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "203.0.113.7" {
			t.Fatalf("%s allowed query: %v", proto, m)
		}
		r.mu.Lock()
		learned, done := r.learned, r.learnDone
		r.mu.Unlock()
		if len(learned) == 0 || learned[len(learned)-1].Name != "one.one.one.one." || learned[len(learned)-1].IPs[0] != netip.MustParseAddr("203.0.113.7") {
			t.Fatalf("%s: learned %v", proto, learned)
		}
		if at.Before(done) {
			t.Fatalf("%s: the answer reached the pod at %v, before the addresses were learned at %v", proto, at, done)
		}
		if m, _ = r.ask(t, proto, "www.cilium.io."); m.Rcode != dns.RcodeSuccess {
			t.Fatalf("%s query for www.cilium.io.: %v", proto, m)
		}
		for _, name := range []string{"cilium.io.", "one.one.one.one.evil.com.", "evil.com."} {
			if m, _ = r.ask(t, proto, name); m.Rcode != dns.RcodeRefused || len(m.Answer) != 0 {
				t.Fatalf("%s denied query for %s: %v, want REFUSED", proto, name, m)
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.dialed) != 4 || r.dialed[0] != "udp 192.0.2.53:53" || r.dialed[2] != "tcp 192.0.2.53:53" {
		t.Fatalf("upstream dials %v, want the allowed queries only, to the server the pod asked", r.dialed)
	}
	var refused int
	for _, rec := range r.records {
		if rec.Client.Addr() != r.n.PodIP || rec.Server != r.server {
			t.Fatalf("record %+v: wrong addresses", rec)
		}
		if !rec.Decision.Allowed && rec.Rcode == dns.RcodeRefused {
			refused++
		}
	}
	if len(r.records) != 10 || refused != 6 {
		t.Fatalf("%d records, %d refused; want 10 and 6: %+v", len(r.records), refused, r.records)
	}
}

// inNS runs f in ns on a thread of its own.
func inNS(ns netns.NsHandle, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		return err
	}
	defer netns.Set(orig)
	return f()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
