package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// DefaultServiceCIDR is the cluster's service range, one per family as the
// nodes are dual-stack; the agents get it too, to drop what is unallocated.
const DefaultServiceCIDR = "10.96.0.0/16,fd00:10:96::/112"

// Options says where and how to run a control plane. Zero values take the defaults.
type Options struct {
	Name     string // cluster name; default "kestrel"
	StateDir string // default DefaultStateDir(Name)
	BinDir   string // Kubernetes binaries; default DefaultBinDir()
	EtcdPath string // default /usr/bin/etcd

	// BindAddress is where kube-apiserver listens and what it advertises; default
	// 172.30.0.1, the root namespace's underlay address, so it must exist first.
	BindAddress string
	SecurePort  int // default 6443

	// etcd listens on 127.0.0.1; zero ports are picked free at the first start and
	// kept in STATE/controlplane.json for later starts.
	EtcdClientPort int
	EtcdPeerPort   int

	ServiceCIDR  string        // default 10.96.0.0/16,fd00:10:96::/112 (dual-stack, as the nodes)
	ReadyTimeout time.Duration // default 2 minutes
	StopTimeout  time.Duration // SIGTERM to SIGKILL; default 10s
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	Name       string
	StateDir   string
	Kubeconfig string        // STATE/kubeconfig: admin, token auth
	Server     string        // https://BIND:PORT
	Ready      time.Duration // from Start to ready, CRDs Established included
}

// Processes are the control plane's processes, in start order.
var Processes = []string{"etcd", "kube-apiserver", "kube-controller-manager"}

const (
	configFile      = "controlplane.json"
	serviceIssuer   = "https://kubernetes.default.svc.cluster.local"
	defaultName     = "kestrel"
	defaultBindAddr = "172.30.0.1"
)

func (o *Options) setDefaults() error {
	if o.Name == "" {
		o.Name = defaultName
	}
	if strings.ContainsAny(o.Name, "/ ") {
		return fmt.Errorf("cluster name %q: no slashes or spaces", o.Name)
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir(o.Name)
	}
	abs, err := filepath.Abs(o.StateDir)
	if err != nil {
		return err
	}
	o.StateDir = filepath.Clean(abs)
	if o.BinDir == "" {
		o.BinDir = DefaultBinDir()
	}
	if o.EtcdPath == "" {
		o.EtcdPath = "/usr/bin/etcd"
	}
	if o.BindAddress == "" {
		o.BindAddress = defaultBindAddr
	}
	if o.SecurePort == 0 {
		o.SecurePort = 6443
	}
	if o.ServiceCIDR == "" {
		o.ServiceCIDR = DefaultServiceCIDR
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 2 * time.Minute
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = 10 * time.Second
	}
	return nil
}

// Start brings up etcd, kube-apiserver and kube-controller-manager as detached
// processes, writes STATE/kubeconfig, installs the Cilium CRDs and returns once the
// API is ready, the CRDs are Established and the default service account exists.
// Processes already running for this state dir are kept. If Start fails, it stops
// what it started; the logs stay in STATE/logs.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	begin := time.Now()
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	if missing := MissingBinaries(opts.BinDir, opts.EtcdPath); len(missing) > 0 {
		return nil, missingError(missing)
	}
	if err := checkLocalAddress(opts.BindAddress); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.StateDir, 0o755); err != nil {
		return nil, err
	}
	running := runningProcesses(opts.StateDir)
	if err := resolvePorts(&opts, len(running) > 0); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, opts.ReadyTimeout,
		fmt.Errorf("control plane not ready after %s (logs in %s)", opts.ReadyTimeout, filepath.Join(opts.StateDir, "logs")))
	defer cancel()

	cp, err := start(ctx, opts)
	if err != nil {
		for i := len(Processes) - 1; i >= 0; i-- {
			if name := Processes[i]; !slices.Contains(running, name) {
				err = errors.Join(err, StopProcess(opts.StateDir, name, opts.StopTimeout))
			}
		}
		return nil, err
	}
	cp.Ready = time.Since(begin)
	return cp, nil
}

func start(ctx context.Context, o Options) (*ControlPlane, error) {
	keys := newPKI(o.StateDir)
	token, err := keys.ensure()
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	cp := &ControlPlane{
		Name:       o.Name,
		StateDir:   o.StateDir,
		Kubeconfig: filepath.Join(o.StateDir, "kubeconfig"),
		Server:     "https://" + net.JoinHostPort(advertiseAddress(o.BindAddress), strconv.Itoa(o.SecurePort)),
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", o.EtcdClientPort)

	if _, err := StartProcess(etcdSpec(o, etcdURL)); err != nil {
		return nil, err
	}
	if err := waitEtcd(ctx, o.StateDir, etcdURL); err != nil {
		return nil, err
	}
	if _, err := StartProcess(apiserverSpec(o, keys, etcdURL)); err != nil {
		return nil, err
	}
	ca, err := waitFile(ctx, o.StateDir, "kube-apiserver", keys.servingCrt)
	if err != nil {
		return nil, err
	}
	if err := writeKubeconfig(cp.Kubeconfig, o.Name, cp.Server, ca, token); err != nil {
		return nil, err
	}
	config, err := cp.RESTConfig()
	if err != nil {
		return nil, err
	}
	if err := waitReadyz(ctx, o.StateDir, config); err != nil {
		return nil, err
	}
	if _, err := StartProcess(controllerManagerSpec(o, keys, cp.Kubeconfig)); err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	if err := installCRDs(ctx, dyn); err != nil {
		return nil, err
	}
	clients, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	if err := waitDefaultServiceAccount(ctx, o.StateDir, clients); err != nil {
		return nil, err
	}
	return cp, nil
}

// RESTConfig is the admin client configuration, from STATE/kubeconfig.
func (cp *ControlPlane) RESTConfig() (*rest.Config, error) {
	return RESTConfig(cp.Kubeconfig)
}

// Stop ends the control plane's processes; see the package function Stop.
func (cp *ControlPlane) Stop() error {
	return Stop(cp.StateDir)
}

// Stop ends every process recorded for the control plane in stateDir, newest first:
// SIGTERM to its process group, SIGKILL after a grace period. It needs only the pid
// files, so it works after the starting process died, and it is idempotent.
func Stop(stateDir string) error {
	grace := 10 * time.Second
	if o, err := loadOptions(stateDir); err == nil && o.StopTimeout > 0 {
		grace = o.StopTimeout
	}
	return stop(stateDir, grace)
}

func stop(stateDir string, grace time.Duration) error {
	var errs []error
	for i := len(Processes) - 1; i >= 0; i-- {
		errs = append(errs, StopProcess(stateDir, Processes[i], grace))
	}
	return errors.Join(errs...)
}

func runningProcesses(stateDir string) []string {
	var running []string
	for _, name := range Processes {
		if _, ok := RunningPID(stateDir, name); ok {
			running = append(running, name)
		}
	}
	return running
}

// resolvePorts reuses the etcd ports of an earlier start, picks free ones otherwise,
// and records the options for Stop and later starts. While processes of the earlier
// start still run, the options must be the same: those processes are kept as they are.
func resolvePorts(o *Options, running bool) error {
	if prev, err := loadOptions(o.StateDir); err == nil {
		if o.EtcdClientPort == 0 {
			o.EtcdClientPort = prev.EtcdClientPort
		}
		if o.EtcdPeerPort == 0 {
			o.EtcdPeerPort = prev.EtcdPeerPort
		}
		if running && !sameProcessOptions(*o, prev) {
			return fmt.Errorf("control plane in %s already runs with other options (%s); stop it first",
				o.StateDir, filepath.Join(o.StateDir, configFile))
		}
	}
	for _, p := range []*int{&o.EtcdClientPort, &o.EtcdPeerPort} {
		if *p != 0 {
			continue
		}
		port, err := FreePort("127.0.0.1")
		if err != nil {
			return err
		}
		*p = port
	}
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(o.StateDir, configFile), append(b, '\n'), 0o644)
}

// sameProcessOptions compares what the command lines are made of.
func sameProcessOptions(a, b Options) bool {
	a.ReadyTimeout, a.StopTimeout = b.ReadyTimeout, b.StopTimeout
	return a == b
}

func loadOptions(stateDir string) (Options, error) {
	var o Options
	b, err := os.ReadFile(filepath.Join(stateDir, configFile))
	if err != nil {
		return o, err
	}
	return o, json.Unmarshal(b, &o)
}

// FreePort returns a TCP port nobody listens on at addr right now.
func FreePort(addr string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// checkLocalAddress fails early, and says why, when kube-apiserver could not bind addr.
func checkLocalAddress(addr string) error {
	ip := net.ParseIP(addr)
	if ip == nil {
		return fmt.Errorf("bind address %q is not an IP address", addr)
	}
	if ip.IsUnspecified() {
		return nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return nil
		}
	}
	return fmt.Errorf("bind address %s is not on any interface of this namespace: create the underlay first, or choose another BindAddress", addr)
}
