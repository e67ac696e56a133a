package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/kestrelnet/kestrel/agent/datapathstate"
	"github.com/kestrelnet/kestrel/agent/identity"
	"github.com/kestrelnet/kestrel/agent/policy"
	httpproxy "github.com/kestrelnet/kestrel/agent/proxy/http"
	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

// flowOf resolves every connection the proxy accepts as the one flow the
// datapath redirected (the test's client reaches the proxy over loopback,
// not through the pod's device); Generation is the table's.
type flowOf struct {
	*Table
	client, orig netip.AddrPort
}

func (f flowOf) Resolve(dir policy.Direction, _, _ netip.AddrPort) (*httpproxy.Connection, error) {
	return f.Table.Resolve(dir, f.client, f.orig)
}

// A policy change applies to the next request of a connection already open
// through the proxy, not only to new connections: a hostile client that
// opened a keep-alive connection while GET was allowed cannot keep sending
// GETs once the policy allows only POST, and once the port is no longer
// redirected at all its requests get no decision and the connection ends.
func TestAPolicyChangeAppliesToRequestsOfOpenConnections(t *testing.T) {
	proxyAddr, setRules := policyChangeRig(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "upstream %s", r.Method) }))
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	ask := func(method string) (int, string, error) {
		if _, err := fmt.Fprintf(c, "%s / HTTP/1.1\r\nHost: 192.0.2.10\r\nContent-Length: 0\r\n\r\n", method); err != nil {
			return 0, "", err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0, "", err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body), nil
	}
	expect := func(step, method string, status int, body string) {
		t.Helper()
		got, b, err := ask(method)
		if err != nil || got != status || b != body {
			t.Fatalf("%s: %s answered %d %q (%v), want %d %q", step, method, got, b, err, status, body)
		}
	}
	expect("GET allowed", "GET", 200, "upstream GET")
	expect("GET allowed", "POST", 403, httpproxy.AccessDenied)

	setRules(true, "POST") // on the same connection, the next requests get the new rules
	expect("POST only", "GET", 403, httpproxy.AccessDenied)
	expect("POST only", "POST", 200, "upstream POST")

	setRules(false, "") // port 80 allowed without L7 rules: the proxy holds no decision
	expect("no redirect", "GET", 403, httpproxy.AccessDenied)
	if _, _, err := ask("GET"); err == nil || !(err == io.EOF || strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "EOF")) {
		t.Fatalf("the connection stayed open after its flow lost its redirect: %v", err)
	}
}

// The same for the streams of one HTTP/2 connection (gRPC without TLS):
// each new stream is judged by the policy as it is when the stream opens.
func TestAPolicyChangeAppliesToNewStreamsOfAnOpenHTTP2Connection(t *testing.T) {
	proxyAddr, setRules := policyChangeRig(t, h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream %s", r.Method)
	}), &http2.Server{}))
	var dials int
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, _ string, _ *tls.Config) (net.Conn, error) {
		dials++
		return (&net.Dialer{}).DialContext(ctx, network, proxyAddr)
	}}
	defer tr.CloseIdleConnections()
	ask := func(method string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, "http://192.0.2.10/", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body)
	}
	if s, b := ask("GET"); s != 200 || b != "upstream GET" {
		t.Fatalf("GET under the GET rule: %d %q", s, b)
	}
	setRules(true, "POST")
	if s, b := ask("GET"); s != 403 || b != httpproxy.AccessDenied {
		t.Fatalf("GET on a new stream after the policy allowed only POST: %d %q, want 403", s, b)
	}
	if s, b := ask("POST"); s != 200 || b != "upstream POST" {
		t.Fatalf("POST after the policy allowed it: %d %q", s, b)
	}
	if dials != 1 {
		t.Fatalf("the client dialled the proxy %d times: the streams did not share one connection", dials)
	}
}

// policyChangeRig loads a datapath whose pod's egress to TCP 80 is redirected
// to the HTTP proxy, sends one SYN through it (the flow the proxy resolves),
// and serves the proxy on loopback in front of an upstream running h. It
// returns the proxy's address and a function that writes the pod's rules
// for port 80 into the proxies' table: GET or POST only (redirect), or
// allowed without L7 rules.
func policyChangeRig(t *testing.T, h http.Handler) (string, func(redirect bool, method string)) {
	d := datapathtest.Load(t)
	pod, world := netip.MustParseAddr("10.244.0.10"), netip.MustParseAddr("192.0.2.10")
	const podID = 300
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.SyncIPCache([]datapath.IPCacheEntry{{Prefix: netip.PrefixFrom(pod, 32), Identity: podID}}))
	ep := datapath.Endpoint{ID: 1, Identity: podID, IPs: []netip.Addr{pod}, EgressEnforced: true}
	must(d.UpsertEndpoint(ep))
	must(d.SetPolicy(1, []datapath.PolicyEntry{{Direction: datapath.Egress, Protocol: 6, PortLo: 80, Action: datapath.PolicyRedirect, ProxyPort: policy.ProxyPortHTTPEgress}}))
	var proxyLn net.Listener
	var err error
	must(d.InTestNamespace(func() { proxyLn, err = datapath.ListenProxy(t.Context(), policy.ProxyPortHTTPEgress) }))
	must(err)
	t.Cleanup(func() { proxyLn.Close() })
	client, orig := netip.AddrPortFrom(pod, 40000), netip.AddrPortFrom(world, 80)
	syn, err := packet.Build(packet.Spec{Src: pod, Dst: world, Protocol: "TCP", SrcPort: client.Port(), DstPort: 80, Flags: []string{"SYN"}})
	must(err)
	res, err := d.Run(datapath.FromContainer, syn)
	must(err)
	if len(res.Events) == 0 || res.Events[len(res.Events)-1].Verdict != datapath.VerdictRedirected {
		t.Fatalf("the SYN was not redirected: %v", res.Events)
	}

	upstream := httptest.NewServer(h)
	t.Cleanup(upstream.Close)
	tab := &Table{CT: d, Dial: func(int) func(ctx context.Context, network, addr string) (net.Conn, error) {
		return func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, upstream.Listener.Addr().String())
		}
	}}
	setRules := func(redirect bool, method string) {
		e := policy.Entry{Origins: []policy.Origin{{Kind: "CiliumNetworkPolicy", Namespace: "x", Name: "web"}}}
		if redirect {
			e.ProxyPort, e.HTTP = policy.ProxyPortHTTPEgress, []policy.HTTPRule{{Method: method}}
		}
		pol := &policy.EndpointPolicy{EgressEnforced: true, Entries: map[policy.Key]policy.Entry{
			{Direction: policy.Egress, Protocol: policy.ProtoTCP, PortLo: 80, PortHi: 80}: e}}
		tab.Set(&policy.Result{Endpoints: map[string]*policy.Endpoint{"x/a": {Key: "x/a", Identity: identity.NumericIdentity(podID), Policy: pol}}},
			&datapathstate.State{Endpoints: map[string]datapath.Endpoint{"x/a": ep}}, []datapathstate.Local{{Key: "x/a", Pod: "x/a"}})
	}
	setRules(true, "GET")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	t.Cleanup(func() { ln.Close() })
	srv := &httpproxy.Server{Direction: policy.Egress, Resolver: flowOf{tab, client, orig}}
	go srv.Serve(ln)
	return ln.Addr().String(), setRules
}
