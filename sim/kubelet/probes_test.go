package kubelet

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestProbeThresholdsAndTiming(t *testing.T) {
	p := &corev1.Probe{InitialDelaySeconds: 5, PeriodSeconds: 2, SuccessThreshold: 2, FailureThreshold: 2}
	start := time.Unix(1000, 0)
	var s probeState
	if due, wait := s.due(p, start, start.Add(time.Second)); due || wait != 4*time.Second {
		t.Fatalf("during the initial delay: due=%v wait=%s, want false 4s", due, wait)
	}
	now := start.Add(5 * time.Second)
	if due, _ := s.due(p, start, now); !due {
		t.Fatal("not due once the initial delay has passed")
	}
	s.record(p, nil, now)
	if s.ok {
		t.Fatal("ok after one success with successThreshold 2")
	}
	if due, wait := s.due(p, start, now.Add(time.Second)); due || wait != time.Second {
		t.Fatalf("mid-period: due=%v wait=%s, want false 1s", due, wait)
	}
	s.record(p, nil, now.Add(2*time.Second))
	if !s.ok {
		t.Fatal("not ok after two successes")
	}
	s.record(p, errors.New("refused"), now.Add(4*time.Second))
	if !s.ok {
		t.Fatal("one failure under failureThreshold 2 must not flip the verdict")
	}
	s.record(p, errors.New("refused"), now.Add(6*time.Second))
	if s.ok || s.message != "refused" {
		t.Fatalf("after two failures: ok=%v message=%q", s.ok, s.message)
	}
	var d probeState
	d.record(&corev1.Probe{}, errors.New("x"), now)
	d.record(&corev1.Probe{}, errors.New("x"), now)
	if d.failures != 2 {
		t.Fatal("failures are not counted")
	}
	if d.record(&corev1.Probe{}, nil, now); !d.ok || d.failures != 0 {
		t.Fatal("the default successThreshold is 1 and a success resets failures")
	}
}

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

func TestHTTPProbeStatusPathHeadersAndNamedPort(t *testing.T) {
	var gotHost, gotAgent, gotHeader string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost, gotAgent, gotHeader = r.Host, r.UserAgent(), r.Header.Get("X-Probe")
		switch r.URL.Path {
		case "/healthz":
			w.WriteHeader(http.StatusOK)
		case "/moved":
			http.Redirect(w, r, "http://elsewhere.invalid/", http.StatusFound)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ip, port := hostPort(t, u.Host)
	c := corev1.Container{Name: "web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	probe := func(path string) error {
		return runProbe(context.Background(), &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: intstr.FromString("http"),
			HTTPHeaders: []corev1.HTTPHeader{{Name: "Host", Value: "probe.example"}, {Name: "X-Probe", Value: "1"}},
		}}}, c, ip, "", "")
	}
	if err := probe("healthz"); err != nil {
		t.Fatalf("200 must pass: %v", err)
	}
	if gotHost != "probe.example" || !strings.HasPrefix(gotAgent, "kube-probe/") || gotHeader != "1" {
		t.Fatalf("request had Host %q, User-Agent %q, X-Probe %q", gotHost, gotAgent, gotHeader)
	}
	if err := probe("/moved"); err != nil {
		t.Fatalf("a redirect must pass without being followed: %v", err)
	}
	if err := probe("/down"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("503 must fail naming the status: %v", err)
	}
}

func TestTCPProbeAndPortErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ip, port := hostPort(t, ln.Addr().String())
	tcp := func(p intstr.IntOrString, c corev1.Container) error {
		return runProbe(context.Background(), &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: p}}}, c, ip, "", "")
	}
	if err := tcp(intstr.FromInt32(int32(port)), corev1.Container{}); err != nil {
		t.Fatalf("a listening port must pass: %v", err)
	}
	ln.Close()
	if err := tcp(intstr.FromInt32(int32(port)), corev1.Container{}); err == nil {
		t.Fatal("a closed port must fail")
	}
	if err := tcp(intstr.FromString("metrics"), corev1.Container{Name: "app"}); err == nil || !strings.Contains(err.Error(), `no port named "metrics"`) {
		t.Fatalf("an unknown port name must fail naming it: %v", err)
	}
	if err := tcp(intstr.FromInt32(0), corev1.Container{}); err == nil {
		t.Fatal("port 0 must fail")
	}
	grpc := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9000}}}
	if err := runProbe(context.Background(), grpc, corev1.Container{}, ip, "", ""); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("gRPC probes must fail saying they are unsupported: %v", err)
	}
}
