package httpproxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/kestrelnet/kestrel/agent/policy"
)

// gRPC over cleartext HTTP/2 through the proxy: calls are judged by their
// path (/package.Service/Method), a denied call gets 403 with Cilium's
// body, an allowed one the upstream's body and trailers (gRPC's status),
// both on one client connection.
func TestH2CCallsAreJudgedByTheirPath(t *testing.T) {
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer upLn.Close()
	upstream := &http.Server{Handler: h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "echo: "+string(body))
		w.Header().Set("Grpc-Status", "0")
	}), &http2.Server{})}
	go upstream.Serve(upLn)
	defer upstream.Close()

	m, err := Compile([]policy.HTTPRule{{Method: "POST", Path: "/kestrel.Echo/Say"}}, false)
	must(t, err)
	var mu sync.Mutex
	var records []Record
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, upLn.Addr().String())
	}
	p := &Server{Direction: policy.Ingress, Resolver: fixedResolver{&Connection{Matcher: m, Dial: dial}},
		Observe: func(r Record) { mu.Lock(); records = append(records, r); mu.Unlock() }}
	pLn, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer pLn.Close()
	go p.Serve(pLn)

	var dials int
	client := &http.Client{Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, _ string, _ *tls.Config) (net.Conn, error) {
			dials++
			return (&net.Dialer{}).DialContext(ctx, network, pLn.Addr().String())
		}}}
	call := func(method string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest("POST", "http://echo.kestrel/kestrel.Echo/"+method, strings.NewReader("hi"))
		must(t, err)
		req.Header.Set("Content-Type", "application/grpc")
		resp, err := client.Do(req)
		must(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	resp, body := call("Say")
	if resp.StatusCode != 200 || body != "echo: hi" || resp.Trailer.Get("Grpc-Status") != "0" || resp.ProtoMajor != 2 {
		t.Fatalf("allowed call: %d %q trailers %v proto %s", resp.StatusCode, body, resp.Trailer, resp.Proto)
	}
	resp, body = call("Shout")
	if resp.StatusCode != http.StatusForbidden || body != AccessDenied {
		t.Fatalf("denied call: %d %q, want 403 %q", resp.StatusCode, body, AccessDenied)
	}
	if dials != 1 {
		t.Errorf("the client dialled %d times; both calls share one HTTP/2 connection", dials)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(records) != 2 || !records[0].Allowed || records[0].Protocol != "HTTP/2.0" || records[0].URL != "echo.kestrel/kestrel.Echo/Say" ||
		records[1].Allowed || records[1].Status != 403 {
		t.Fatalf("decisions: %v", records)
	}
}
