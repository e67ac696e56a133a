// Package healthcheck serves what kube-proxy's health servers serve, so that
// load balancers and tools probing a node see no difference when Kestrel
// replaces kube-proxy:
//
//   - on each healthCheckNodePort (LoadBalancer services with
//     externalTrafficPolicy Local), HTTP 200 while the node has a ready
//     local endpoint of the service and the proxy is healthy, 503 otherwise,
//     with a JSON body naming the service and its local endpoint count;
//   - on the proxy's health address (kube-proxy's 10256), /healthz and /livez.
//
// The facts are those of kube-proxy's pkg/proxy/healthcheck (response codes,
// headers, bodies); the code is Kestrel's own.
package healthcheck

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kestrelnet/kestrel/agent/service"
)

// FailureReporter is told when a service's health check port cannot be
// opened (kube-proxy records a FailedToStartServiceHealthcheck event on the
// Service). It is called once per service, port and error until the port
// opens or the service goes, not on every sync.
type FailureReporter func(svc types.NamespacedName, port uint16, err error)

// ServiceServer keeps one HTTP listener per node address for each service
// health check the load-balancing state asks for.
type ServiceServer struct {
	log     *slog.Logger
	report  FailureReporter
	healthy func() bool

	mu       sync.Mutex
	addrs    []netip.Addr
	services map[types.NamespacedName]*instance
	failed   map[types.NamespacedName]string // last failure reported, by service
}

type instance struct {
	port      uint16
	endpoints int // local ready endpoints, under ServiceServer.mu
	servers   []*http.Server
	listeners []net.Listener
}

// close closes the servers and their listeners: a listener whose Serve has
// not started yet is not the server's to close, and would otherwise accept
// connections until it does.
func (in *instance) close() {
	for _, srv := range in.servers {
		srv.Close()
	}
	for _, ln := range in.listeners {
		ln.Close()
	}
}

// NewServiceServer returns a server with no listeners. healthy says whether
// the proxy itself is healthy (a health check answers 503 when it is not);
// nil means always. report may be nil.
func NewServiceServer(log *slog.Logger, report FailureReporter, healthy func() bool) *ServiceServer {
	if healthy == nil {
		healthy = func() bool { return true }
	}
	return &ServiceServer{log: log, report: report, healthy: healthy,
		services: map[types.NamespacedName]*instance{}, failed: map[types.NamespacedName]string{}}
}

// Sync makes the open health checks exactly checks, each listening on every
// one of addrs (the node's addresses): a check whose service went, or whose
// port changed, is closed; a new one is opened; the endpoint counts are
// updated in place, without touching the listeners. When addrs change,
// every check is reopened on the new addresses. A check that cannot be
// opened (the port is taken, the address is not local) is logged and
// reported, and tried again at the next Sync; the others are unaffected.
// It returns the failures of this Sync.
func (s *ServiceServer) Sync(addrs []netip.Addr, checks []service.HealthCheck) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[types.NamespacedName]service.HealthCheck{}
	for _, c := range checks {
		want[c.Service] = c
	}
	if !slices.Equal(addrs, s.addrs) {
		s.addrs = slices.Clone(addrs)
		for name, in := range s.services {
			s.closeLocked(name, in)
		}
	}
	for name, in := range s.services {
		if c, ok := want[name]; !ok || c.Port != in.port {
			s.closeLocked(name, in)
		}
	}
	for name := range s.failed {
		if _, ok := want[name]; !ok {
			delete(s.failed, name)
		}
	}
	var errs []error
	for _, name := range sortedNames(want) {
		c := want[name]
		if in, ok := s.services[name]; ok {
			in.endpoints = c.LocalEndpoints
			continue
		}
		in, err := s.open(name, c.Port)
		if err != nil {
			errs = append(errs, err)
			if s.failed[name] != err.Error() {
				s.failed[name] = err.Error()
				s.log.Error("cannot serve a service's health check", "service", name.String(), "port", c.Port, "err", err)
				if s.report != nil {
					s.report(name, c.Port, err)
				}
			}
			continue
		}
		delete(s.failed, name)
		in.endpoints = c.LocalEndpoints
		s.services[name] = in
		s.log.Info("serving a service's health check", "service", name.String(), "port", c.Port)
	}
	return errs
}

// Close closes every listener.
func (s *ServiceServer) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, in := range s.services {
		s.closeLocked(name, in)
	}
}

// Ports returns the open health checks' ports, by service.
func (s *ServiceServer) Ports() map[types.NamespacedName]uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[types.NamespacedName]uint16{}
	for name, in := range s.services {
		out[name] = in.port
	}
	return out
}

func (s *ServiceServer) closeLocked(name types.NamespacedName, in *instance) {
	in.close()
	delete(s.services, name)
	s.log.Info("closed a service's health check", "service", name.String(), "port", in.port)
}

// open listens on every node address, all or none: a port half open would
// tell a load balancer different things depending on the address it probes.
func (s *ServiceServer) open(name types.NamespacedName, port uint16) (*instance, error) {
	if len(s.addrs) == 0 {
		return nil, fmt.Errorf("health check port %d for %s: no node address to listen on", port, name)
	}
	in := &instance{port: port}
	h := handler{s: s, name: name}
	for _, a := range s.addrs {
		addr := netip.AddrPortFrom(a, port).String()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			in.close()
			return nil, fmt.Errorf("health check port %d for %s: %w", port, name, err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		in.servers = append(in.servers, srv)
		in.listeners = append(in.listeners, ln)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("a service's health check stopped", "service", name.String(), "addr", addr, "err", err)
			}
		}()
	}
	return in, nil
}

// handler answers on one service's health check port, whatever the path.
type handler struct {
	s    *ServiceServer
	name types.NamespacedName
}

// serviceStatus is the body, as kube-proxy writes it.
type serviceStatus struct {
	Service struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"service"`
	LocalEndpoints      int  `json:"localEndpoints"`
	ServiceProxyHealthy bool `json:"serviceProxyHealthy"`
}

func (h handler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.s.mu.Lock()
	in, ok := h.s.services[h.name]
	count := 0
	if ok {
		count = in.endpoints
	}
	h.s.mu.Unlock()
	if !ok {
		// A request that raced the close of its listener.
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var st serviceStatus
	st.Service.Namespace, st.Service.Name = h.name.Namespace, h.name.Name
	st.LocalEndpoints = count
	st.ServiceProxyHealthy = h.s.healthy()
	body, _ := json.MarshalIndent(st, "", "\t")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// Load balancers that weigh nodes (GCE's WEIGHTED_MAGLEV) read this.
	w.Header().Set("X-Load-Balancing-Endpoint-Weight", strconv.Itoa(count))
	if count > 0 && st.ServiceProxyHealthy {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	w.Write(body)
}

func sortedNames(m map[types.NamespacedName]service.HealthCheck) []types.NamespacedName {
	out := make([]types.NamespacedName, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b types.NamespacedName) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}
