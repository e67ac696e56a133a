// Package daemon is the node agent: it watches the cluster, keeps this node's
// datapath in step with it, and serves the endpoint API the CNI plugin uses.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kestrelnet/kestrel/agent/datapathstate"
	"github.com/kestrelnet/kestrel/agent/endpoint"
	"github.com/kestrelnet/kestrel/agent/fqdn"
	"github.com/kestrelnet/kestrel/agent/healthcheck"
	flowpb "github.com/kestrelnet/kestrel/agent/hubbleapi/flow"
	"github.com/kestrelnet/kestrel/agent/identity"
	"github.com/kestrelnet/kestrel/agent/k8s"
	"github.com/kestrelnet/kestrel/agent/observe"
	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/agent/proxy"
	"github.com/kestrelnet/kestrel/agent/service"
	"github.com/kestrelnet/kestrel/datapath"
)

// Config is the daemon's settings.
type Config struct {
	Node        string
	NodeIP      netip.Addr // this node's address, the host identity even before its Node object says so
	ClusterName string
	// LinkPinDir is the bpffs directory where each endpoint's TCX links are
	// pinned, as LinkPinDir/<containerID>-{ingress,egress}.
	LinkPinDir string
	// RegistryPath is the file that remembers the registered endpoints.
	RegistryPath string
	// IdentityPath is the file that remembers identity numbers across
	// restarts; by default identities.json next to RegistryPath.
	IdentityPath string
	// FQDNCachePath is the file that keeps the toFQDNs cache (the addresses
	// the DNS proxy saw answered) across restarts; by default
	// fqdn-cache.json next to RegistryPath.
	FQDNCachePath string
	// Debounce gathers a burst of changes into one regeneration (default 50 ms).
	Debounce time.Duration
	// EndpointTimeout bounds how long a registration waits for its endpoint
	// to be enforced (default 25 s, under the API client's 30 s).
	EndpointTimeout time.Duration
	// ServiceCIDRs are the cluster's service ranges (kube-apiserver's
	// --service-cluster-ip-range), for the load-balancing state.
	ServiceCIDRs []netip.Prefix
	// HealthTimeout is how long a change may wait for the datapath before
	// the agent reports itself unhealthy, as kube-proxy's proxier health
	// does (default 60 s, kube-proxy's for its default sync period).
	HealthTimeout time.Duration
	// EnableL7Proxy runs the HTTP proxies policies with HTTP rules redirect
	// to (Cilium's --enable-l7-proxy); without them such flows drop as
	// PROXY_UNAVAILABLE.
	EnableL7Proxy bool
	// ToFQDNsMinTTL is the shortest time an address the DNS proxy saw
	// answered stays selected by toFQDNs (Cilium's --tofqdns-min-ttl); 0
	// keeps each answer's own TTL.
	ToFQDNsMinTTL time.Duration
	// SocketLBCgroup is where the socket-level load balancer is attached,
	// for the status; empty when it is off.
	SocketLBCgroup string
	// KubeProxy says kube-proxy serves Services on this node
	// (--kube-proxy-replacement=false): the agent watches no Services and
	// writes none, so the datapath's service maps stay empty.
	KubeProxy bool
}

// Daemon is a running agent.
type Daemon struct {
	cfg      Config
	log      *slog.Logger
	dp       Datapath
	watch    *k8s.Watcher
	registry *endpoint.Registry
	cookies  *datapathstate.Cookies
	kick     chan struct{}

	// epMu serialises registrations and removals, which attach and detach
	// programs outside mu.
	epMu  sync.Mutex
	links map[string]Links // by container id

	flowMu    sync.Mutex
	flows     flowRing
	flowAdded chan struct{} // closed (and replaced) when a flow is added
	peers     atomic.Pointer[peerIndex]
	// flowServices names the Services at flows' ends (regeneration).
	flowServices atomic.Pointer[lazyServiceIndex]
	startTime    time.Time

	// events are the agent's notifications for Hubble; policyVersions
	// and policyObjects the policies last reported (d.mu).
	events         observe.AgentEvents
	policyVersions map[string]string
	policyObjects  map[string]policy.Object
	monoToUnix     int64 // add to a CLOCK_MONOTONIC time to get Unix time, in ns

	l7    proxy.Table // what the L7 proxies resolve connections against
	fqdns fqdn.Cache  // names the DNS proxy saw answered, for toFQDNs
	// fqdnDirty says the cache changed without growing (a refreshed TTL)
	// since it was last saved.
	fqdnDirty atomic.Bool

	maint   maintenance
	metrics *agentMetrics

	// svcHealth serves the services' healthCheckNodePorts; proxyHealth
	// is the agent's own health as kube-proxy reports it.
	svcHealth   *healthcheck.ServiceServer
	proxyHealth *healthcheck.ProxyHealth

	svcMu    sync.Mutex
	services service.State            // the last load-balancing state computed
	lbIDs    datapathstate.ServiceIDs // datapath service ids, under mu (regeneration)
	svcCache *service.Cache           // each Service's part of the state, under mu (regeneration)
	// svcWritten: the datapath holds the services of svcCache's last
	// State, so the next write can be its difference. Under mu.
	svcWritten bool

	mu             sync.Mutex
	installed      map[string]datapath.Endpoint // by container id, as last written
	installedSeq   map[string]uint64            // registry Seq each endpoint was installed at
	identities     map[string]uint32
	identityAlloc  *identity.Allocator // the last resolution's, whose numbers the next one keeps
	savedIDs       identity.Numbering  // as last written to cfg.IdentityPath
	revision       uint64              // every policy-feeding stream is in the datapath up to here
	revisions      map[string]uint64   // each stream's own, by resource name
	generations    uint64
	programmed     bool // a regeneration has succeeded since start
	lastErr        error
	policyErrors   []string
	policyWarnings []string // policy.Warnings of the policies in force
	policies       int      // policies in force after the last regeneration
	started        bool
	changed        chan struct{} // closed (and replaced) after each regeneration attempt
}

// New prepares a daemon and adopts the endpoints an earlier agent left;
// Run starts it.
func New(cfg Config, dp Datapath, cs kubernetes.Interface, dyn dynamic.Interface, log *slog.Logger) (*Daemon, error) {
	if cfg.Debounce == 0 {
		cfg.Debounce = 50 * time.Millisecond
	}
	if cfg.EndpointTimeout == 0 {
		cfg.EndpointTimeout = 25 * time.Second
	}
	if cfg.HealthTimeout == 0 {
		cfg.HealthTimeout = 60 * time.Second
	}
	if cfg.ClusterName == "" {
		cfg.ClusterName = "default"
	}
	if err := os.MkdirAll(cfg.LinkPinDir, 0o700); err != nil {
		return nil, fmt.Errorf("link pin directory: %w", err)
	}
	reg, err := endpoint.Open(cfg.RegistryPath)
	if err != nil {
		return nil, err
	}
	if cfg.IdentityPath == "" {
		cfg.IdentityPath = filepath.Join(filepath.Dir(cfg.RegistryPath), "identities.json")
	}
	// The numbers in the pinned maps were given by the previous agent; keep
	// them. A damaged file only costs a renumbering, so it is not fatal.
	prevIDs, err := identity.LoadNumbering(cfg.IdentityPath)
	if err != nil {
		log.Warn("identity numbering not kept; identities will be renumbered", "err", err)
	}
	if cfg.FQDNCachePath == "" {
		cfg.FQDNCachePath = filepath.Join(filepath.Dir(cfg.RegistryPath), "fqdn-cache.json")
	}
	d := &Daemon{
		cfg: cfg, log: log, dp: dp, registry: reg,
		cookies:       datapathstate.NewCookies(),
		svcCache:      service.NewCache(),
		kick:          make(chan struct{}, 1),
		links:         map[string]Links{},
		installed:     map[string]datapath.Endpoint{},
		metrics:       newAgentMetrics(),
		installedSeq:  map[string]uint64{},
		revisions:     map[string]uint64{},
		identities:    map[string]uint32{},
		identityAlloc: prevIDs,
		changed:       make(chan struct{}),
		flows:         flowRing{instance: fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())},
		flowAdded:     make(chan struct{}),
		startTime:     time.Now(),
		monoToUnix:    monotonicOffset(),
	}
	d.restoreFQDNs()
	events := &k8s.EventReporter{Client: cs, Node: cfg.Node, Log: log}
	d.proxyHealth = healthcheck.NewProxyHealth(cfg.HealthTimeout)
	var report healthcheck.FailureReporter
	if cs != nil {
		report = events.HealthCheckFailed
	}
	d.svcHealth = healthcheck.NewServiceServer(log, report, d.proxyHealth.Healthy)
	var watchOpts []k8s.WatcherOption
	if cfg.KubeProxy {
		watchOpts = append(watchOpts, k8s.WithoutServices())
	}
	d.watch = k8s.NewWatcher(cs, dyn, log, events, d.trigger, watchOpts...)
	d.events.Add(&flowpb.AgentEvent{Type: flowpb.AgentEventType_AGENT_STARTED, Notification: &flowpb.AgentEvent_AgentStart{
		AgentStart: &flowpb.TimeNotification{Time: timestamppb.New(d.startTime)}}})
	// Adopt before the API is served, so a registration cannot race it.
	d.adopt()
	return d, nil
}

// Run waits for the caches, and keeps the datapath in step until ctx ends. It leaves everything attached
// and pinned when it returns, so that the next agent adopts it.
func (d *Daemon) Run(ctx context.Context) error {
	if d.cfg.EnableL7Proxy {
		if err := d.startProxies(ctx); err != nil {
			return fmt.Errorf("L7 proxies: %w", err)
		}
	}
	d.watch.Start(ctx)
	d.log.Info("waiting for the informer caches")
	if !d.watch.WaitForSync(ctx) {
		return ctx.Err()
	}
	d.mu.Lock()
	d.started = true
	d.mu.Unlock()
	d.log.Info("informer caches synced")
	go d.expireFQDNs(ctx)
	d.trigger()
	d.loop(ctx)
	d.svcHealth.Close()
	d.epMu.Lock()
	defer d.epMu.Unlock()
	for _, l := range d.links {
		l.Close()
	}
	return nil
}

// trigger asks for a regeneration; it never blocks, so informer handlers
// can call it.
func (d *Daemon) trigger() {
	d.proxyHealth.QueuedUpdate()
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (d *Daemon) pinOf(containerID string) string {
	return filepath.Join(d.cfg.LinkPinDir, containerID)
}

// HealthHandler serves /healthz and /livez as kube-proxy does on its
// --healthz-bind-address (0.0.0.0:10256).
func (d *Daemon) HealthHandler() http.Handler { return d.proxyHealth.Handler() }
