package httpproxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

type fixedResolver struct{ conn *Connection }

func (r fixedResolver) Resolve(policy.Direction, netip.AddrPort, netip.AddrPort) (*Connection, error) {
	return r.conn, nil
}

// dialIn dials from the namespace ns on a thread of its own.
func dialIn(ns netns.NsHandle, mark int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			return nil, err
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			return nil, err
		}
		defer netns.Set(orig)
		return datapath.ProxyDialer(mark).DialContext(ctx, network, addr)
	}
}

// rig is a pod attached to a loaded datapath, a server at 192.0.2.10:80
// in the node's namespace that the pod routes to through the node, and the
// egress HTTP proxy serving the pod's connections with rules.
type rig struct {
	d       *datapath.Datapath
	n       *datapathtest.PodNetwork
	server  netip.Addr
	mu      sync.Mutex
	records []Record
}

const rigPodIdentity = 300

func newRig(t *testing.T, rules []policy.HTTPRule) *rig {
	d, err := datapath.Load(datapath.Config{MonitorAggregation: datapath.MonitorAggregationNone})
	if err != nil {
		datapathtest.SkipOrFail(t, err)
	}
	t.Cleanup(func() { d.Close() })
	n := datapathtest.NewPodNetwork(t, "kestrel-l7", netip.MustParseAddr("10.201.0.1"), netip.MustParseAddr("10.201.0.2"))
	var links *datapath.PodDeviceLinks
	n.In(t, n.Node, func() { links, err = d.AttachPodDevice(n.HostIfindex, "") })
	must(t, err)
	t.Cleanup(func() { links.Close() })
	must(t, d.SyncIPCache([]datapath.IPCacheEntry{{Prefix: netip.PrefixFrom(n.PodIP, 32), Identity: rigPodIdentity}}))
	must(t, d.UpsertEndpoint(n.Endpoint(1, rigPodIdentity, true)))
	r := &rig{d: d, n: n, server: netip.MustParseAddr("192.0.2.10")}
	r.redirect(t, true)

	hn, err := netlink.NewHandleAt(n.Node)
	must(t, err)
	defer hn.Close()
	must(t, datapath.InstallProxyRouting(hn))
	n.In(t, n.Node, func() { must(t, datapath.ProxySysctls()) })
	lo, err := hn.LinkByName("lo")
	must(t, err)
	must(t, hn.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: r.server.AsSlice(), Mask: net.CIDRMask(32, 32)}}))
	hp, err := netlink.NewHandleAt(n.Pod)
	must(t, err)
	defer hp.Close()
	eth, err := hp.LinkByName("eth0")
	must(t, err)
	must(t, hp.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: &net.IPNet{IP: r.server.AsSlice(), Mask: net.CIDRMask(32, 32)}, Gw: n.NodeIP.AsSlice()}))
	var srvLn, proxyLn net.Listener
	n.In(t, n.Node, func() {
		srvLn, err = net.Listen("tcp", netip.AddrPortFrom(r.server, 80).String())
		must(t, err)
		proxyLn, err = datapath.ListenProxy(context.Background(), policy.ProxyPortHTTPEgress)
		must(t, err)
	})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "server saw %s %s from %s", r.Method, r.URL.Path, r.RemoteAddr)
	})}
	go srv.Serve(srvLn)
	t.Cleanup(func() { srv.Close() })

	m, err := Compile(rules, false)
	must(t, err)
	mark, err := datapath.ProxyMarkEgress(rigPodIdentity)
	must(t, err)
	p := &Server{Direction: policy.Egress, Resolver: fixedResolver{&Connection{Matcher: m, Dial: dialIn(n.Node, mark)}},
		Observe: func(rec Record) { r.mu.Lock(); r.records = append(r.records, rec); r.mu.Unlock() }}
	go p.Serve(proxyLn)
	t.Cleanup(func() { proxyLn.Close() })
	return r
}

// redirect makes the pod's egress to TCP 80 go to the proxy, or (false)
// simply allowed.
func (r *rig) redirect(t *testing.T, on bool) {
	e := datapath.PolicyEntry{Direction: datapath.Egress, Protocol: 6, PortLo: 80}
	if on {
		e.Action, e.ProxyPort = datapath.PolicyRedirect, policy.ProxyPortHTTPEgress
	}
	must(t, r.d.SetPolicy(1, []datapath.PolicyEntry{e}))
	must(t, r.d.FlushConntrack())
}

// A pod's HTTP requests on a port with HTTP rules go through the datapath's
// redirect to this proxy: allowed ones reach the server at the original
// destination, denied ones get Cilium's 403, and each decision is observed.
func TestHTTPProxyThroughTheDatapath(t *testing.T) {
	r := newRig(t, []policy.HTTPRule{{Method: "GET", Path: "/public"}})
	n, server := r.n, r.server
	var err error

	send := func(method, path string) (int, string) {
		t.Helper()
		var c net.Conn
		n.In(t, n.Pod, func() { c, err = net.DialTimeout("tcp", netip.AddrPortFrom(server, 80).String(), 2*time.Second) })
		must(t, err)
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\n\r\n", method, path, server)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		must(t, err)
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	if code, body := send("GET", "/public"); code != 200 || !strings.HasPrefix(body, "server saw GET /public from ") {
		t.Fatalf("GET /public: %d %q, want the server's 200 through the proxy", code, body)
	}
	for _, c := range []struct{ method, path string }{{"GET", "/private"}, {"POST", "/public"}} {
		if code, body := send(c.method, c.path); code != http.StatusForbidden || body != AccessDenied {
			t.Fatalf("%s %s: %d %q, want 403 %q", c.method, c.path, code, body, AccessDenied)
		}
	}
	// An allowed request's decision is observed once its answer is
	// relayed, so it may land after the client has read that answer.
	deadline := time.Now().Add(5 * time.Second)
	r.mu.Lock()
	for len(r.records) < 3 && time.Now().Before(deadline) {
		r.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
		r.mu.Lock()
	}
	defer r.mu.Unlock()
	records := slices.Clone(r.records)
	// The allowed request came first; its record may not have.
	slices.SortStableFunc(records, func(a, b Record) int {
		if a.Allowed == b.Allowed {
			return 0
		} else if a.Allowed {
			return -1
		}
		return 1
	})
	if len(records) != 3 || !records[0].Allowed || records[0].Status != 200 || records[1].Allowed || records[1].Status != 403 ||
		records[1].Client.Addr() != n.PodIP || records[1].Server != netip.AddrPortFrom(server, 80) {
		t.Fatalf("decisions: %v", records)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
