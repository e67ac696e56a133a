package healthcheck

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kestrelnet/kestrel/agent/service"
)

var (
	lo4   = netip.MustParseAddr("127.0.0.1")
	web   = types.NamespacedName{Namespace: "shop", Name: "web"}
	db    = types.NamespacedName{Namespace: "shop", Name: "db"}
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
)

// freePort returns a TCP port nothing listens on at the moment.
func freePort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

type answer struct {
	code    int
	header  http.Header
	body    string
	dialErr error
}

func get(t *testing.T, a netip.Addr, port uint16, path string) answer {
	t.Helper()
	c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + netip.AddrPortFrom(a, port).String() + path)
	if err != nil {
		return answer{dialErr: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

// kubeProxyBody is the body kube-proxy writes, spelled out here so that a
// change of ours to field names, order or layout shows.
func kubeProxyBody(name types.NamespacedName, endpoints int, healthy bool) string {
	return fmt.Sprintf("{\n\t\"service\": {\n\t\t\"namespace\": %q,\n\t\t\"name\": %q\n\t},\n\t\"localEndpoints\": %d,\n\t\"serviceProxyHealthy\": %v\n}",
		name.Namespace, name.Name, endpoints, healthy)
}

func expectAnswer(t *testing.T, got answer, code int, name types.NamespacedName, endpoints int, healthy bool) {
	t.Helper()
	if got.dialErr != nil {
		t.Fatalf("no answer: %v", got.dialErr)
	}
	if got.code != code {
		t.Fatalf("status %d, want %d (body %s)", got.code, code, got.body)
	}
	if want := kubeProxyBody(name, endpoints, healthy); got.body != want {
		t.Fatalf("body\n%s\nwant\n%s", got.body, want)
	}
	for k, v := range map[string]string{
		"Content-Type":                     "application/json",
		"X-Content-Type-Options":           "nosniff",
		"X-Load-Balancing-Endpoint-Weight": fmt.Sprint(endpoints),
	} {
		if got.header.Get(k) != v {
			t.Fatalf("header %s: %q, want %q", k, got.header.Get(k), v)
		}
	}
}

func expectClosed(t *testing.T, a netip.Addr, port uint16) {
	t.Helper()
	if got := get(t, a, port, "/"); !errors.Is(got.dialErr, syscall.ECONNREFUSED) {
		t.Fatalf("port %d on %s should be closed, got %+v (%v)", port, a, got, got.dialErr)
	}
}

func TestAHealthCheckFollowsTheLocalEndpoints(t *testing.T) {
	s := NewServiceServer(quiet, nil, nil)
	t.Cleanup(s.Close)
	port := freePort(t)
	sync := func(n int) {
		t.Helper()
		if errs := s.Sync([]netip.Addr{lo4}, []service.HealthCheck{{Service: web, Port: port, LocalEndpoints: n}}); errs != nil {
			t.Fatal(errs)
		}
	}
	sync(1)
	expectAnswer(t, get(t, lo4, port, "/"), http.StatusOK, web, 1, true)
	// Any path answers, as kube-proxy's does (load balancers probe / or /healthz).
	expectAnswer(t, get(t, lo4, port, "/healthz"), http.StatusOK, web, 1, true)
	sync(0)
	expectAnswer(t, get(t, lo4, port, "/"), http.StatusServiceUnavailable, web, 0, true)
	sync(3)
	expectAnswer(t, get(t, lo4, port, "/"), http.StatusOK, web, 3, true)

	// The service goes: its port closes.
	if errs := s.Sync([]netip.Addr{lo4}, nil); errs != nil {
		t.Fatal(errs)
	}
	expectClosed(t, lo4, port)
	if len(s.Ports()) != 0 {
		t.Fatalf("open checks left: %v", s.Ports())
	}
}

func TestAHealthCheckMovesWithItsPortAndTheNodeAddresses(t *testing.T) {
	s := NewServiceServer(quiet, nil, nil)
	t.Cleanup(s.Close)
	p1, p2 := freePort(t), freePort(t)
	other := netip.MustParseAddr("127.0.0.2")
	s.Sync([]netip.Addr{lo4}, []service.HealthCheck{{Service: web, Port: p1, LocalEndpoints: 1}})
	expectAnswer(t, get(t, lo4, p1, "/"), http.StatusOK, web, 1, true)

	s.Sync([]netip.Addr{lo4}, []service.HealthCheck{{Service: web, Port: p2, LocalEndpoints: 1}})
	expectClosed(t, lo4, p1)
	expectAnswer(t, get(t, lo4, p2, "/"), http.StatusOK, web, 1, true)

	// Bound to the node's addresses, not every address: a new address
	// set moves the listener.
	s.Sync([]netip.Addr{other}, []service.HealthCheck{{Service: web, Port: p2, LocalEndpoints: 1}})
	expectClosed(t, lo4, p2)
	expectAnswer(t, get(t, other, p2, "/"), http.StatusOK, web, 1, true)

	// Both families, when the node has both.
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		ln.Close()
		lo6 := netip.MustParseAddr("::1")
		s.Sync([]netip.Addr{lo4, lo6}, []service.HealthCheck{{Service: web, Port: p2, LocalEndpoints: 2}})
		expectAnswer(t, get(t, lo4, p2, "/"), http.StatusOK, web, 2, true)
		expectAnswer(t, get(t, lo6, p2, "/"), http.StatusOK, web, 2, true)
	} else {
		t.Logf("no IPv6 loopback here (%v): the dual-stack case is not run", err)
	}
}

func TestAnUnhealthyProxyFailsEveryHealthCheck(t *testing.T) {
	var mu sync.Mutex
	healthy := true
	s := NewServiceServer(quiet, nil, func() bool { mu.Lock(); defer mu.Unlock(); return healthy })
	t.Cleanup(s.Close)
	port := freePort(t)
	s.Sync([]netip.Addr{lo4}, []service.HealthCheck{{Service: web, Port: port, LocalEndpoints: 2}})
	expectAnswer(t, get(t, lo4, port, "/"), http.StatusOK, web, 2, true)
	mu.Lock()
	healthy = false
	mu.Unlock()
	expectAnswer(t, get(t, lo4, port, "/"), http.StatusServiceUnavailable, web, 2, false)
}

// A port someone else holds is reported once, naming the service, does not
// stop the other checks, and is taken as soon as it is free.
func TestATakenPortIsReportedAndRetried(t *testing.T) {
	var reports []string
	s := NewServiceServer(quiet, func(svc types.NamespacedName, port uint16, err error) {
		reports = append(reports, fmt.Sprintf("%s:%d: %v", svc, port, err))
	}, nil)
	t.Cleanup(s.Close)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	takenPort := uint16(taken.Addr().(*net.TCPAddr).Port)
	freeP := freePort(t)
	checks := []service.HealthCheck{{Service: web, Port: takenPort, LocalEndpoints: 1}, {Service: db, Port: freeP, LocalEndpoints: 1}}

	errs := s.Sync([]netip.Addr{lo4}, checks)
	if len(errs) != 1 || !errors.Is(errs[0], syscall.EADDRINUSE) || !strings.Contains(errs[0].Error(), "shop/web") {
		t.Fatalf("want one address-in-use error naming shop/web, got %v", errs)
	}
	expectAnswer(t, get(t, lo4, freeP, "/"), http.StatusOK, db, 1, true)
	if len(reports) != 1 || !strings.HasPrefix(reports[0], fmt.Sprintf("shop/web:%d: ", takenPort)) {
		t.Fatalf("want one report for shop/web, got %q", reports)
	}
	// The next sync tries again, without reporting the same failure again.
	if errs := s.Sync([]netip.Addr{lo4}, checks); len(errs) != 1 {
		t.Fatalf("want the failure again, got %v", errs)
	}
	if len(reports) != 1 {
		t.Fatalf("the same failure was reported again: %q", reports)
	}
	taken.Close()
	if errs := s.Sync([]netip.Addr{lo4}, checks); errs != nil {
		t.Fatalf("the freed port should open: %v", errs)
	}
	expectAnswer(t, get(t, lo4, takenPort, "/"), http.StatusOK, web, 1, true)

	// An address that is not the node's own fails the same way, and
	// leaves nothing half open on the addresses that worked.
	bad := netip.MustParseAddr("192.0.2.77")
	p := freePort(t)
	errs = s.Sync([]netip.Addr{lo4, bad}, []service.HealthCheck{{Service: web, Port: p, LocalEndpoints: 1}})
	if len(errs) != 1 || !errors.Is(errs[0], syscall.EADDRNOTAVAIL) {
		t.Fatalf("want address-not-available, got %v", errs)
	}
	expectClosed(t, lo4, p)
}
