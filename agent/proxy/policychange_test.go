package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

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
	must(d.InTestNamespace(func() {
		ln, err := datapath.ListenProxy(t.Context(), policy.ProxyPortHTTPEgress)
		must(err)
		t.Cleanup(func() { ln.Close() })
	}))
	client, orig := netip.AddrPortFrom(pod, 40000), netip.AddrPortFrom(world, 80)
	syn, err := packet.Build(packet.Spec{Src: pod, Dst: world, Protocol: "TCP", SrcPort: client.Port(), DstPort: 80, Flags: []string{"SYN"}})
	must(err)
	res, err := d.Run(datapath.FromContainer, syn)
	must(err)
	if len(res.Events) == 0 || res.Events[len(res.Events)-1].Verdict != datapath.VerdictRedirected {
		t.Fatalf("the SYN was not redirected: %v", res.Events)
	}

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "upstream %s", r.Method) }))
	defer upstream.Close()
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
	defer ln.Close()
	srv := &httpproxy.Server{Direction: policy.Egress, Resolver: flowOf{tab, client, orig}}
	go srv.Serve(ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	must(err)
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
