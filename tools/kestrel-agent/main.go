// Command kestrel-agent is Kestrel's node daemon. It runs in the node's
// network namespace, watches the cluster, programs this node's eBPF datapath
// and answers the CNI plugin on a unix socket. See sim/README.md, "The agent".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/agent/daemon"
	"github.com/kestrelnet/kestrel/agent/observe"
	"github.com/kestrelnet/kestrel/datapath"
)

type options struct {
	node, kubeconfig, socket, bpffs, nodeIP, clusterName, logLevel string
	monitorAggregation, serviceCIDRs, prometheusAddr, healthzAddr  string
	cgroupRoot                                                     string
	devices, lbMode, nativeCIDR4, nativeCIDR6                      string
	masquerade, l7Proxy, socketLB, kubeProxyReplacement            bool
	hubbleSocket, hubbleListen, apiListen                          string
	monitorInterval, ctGCInterval                                  time.Duration
	ctTCPMax, ctAnyMax                                             uint
	// In a cluster's DaemonSet (kestrel install): kind/README.md.
	cniConfDir, cniBinDir, cniIPAMDir string
	installCNI, cleanup, nodeRoutes   bool
	fqdnMinTTL                        uint
}

func main() {
	var o options
	flag.StringVar(&o.node, "node", "", "name of this node's Node object (required; default $NODE_NAME)")
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster; empty: the cluster this runs in as a pod (in-cluster config)")
	flag.StringVar(&o.socket, "socket", "", "unix socket of the agent API; endpoints.json is kept next to it (required)")
	flag.StringVar(&o.bpffs, "bpffs", "", "directory on a mounted bpf filesystem for this agent's pins (required)")
	flag.StringVar(&o.nodeIP, "node-ip", "", "this node's address, given the host identity (required; default $NODE_IP)")
	flag.StringVar(&o.clusterName, "cluster-name", "default", "cluster name in pod identities")
	flag.StringVar(&o.prometheusAddr, "prometheus-serve-addr", "", "address to serve Prometheus metrics on (e.g. :9962); empty: off")
	flag.StringVar(&o.healthzAddr, "healthz-bind-address", "0.0.0.0:10256", "address to serve /healthz and /livez on, as kube-proxy's flag; empty: off")
	flag.StringVar(&o.hubbleSocket, "hubble-socket-path", "", "unix socket of the Hubble Observer API (default hubble.sock next to --socket; \"-\": off)")
	flag.StringVar(&o.hubbleListen, "hubble-listen-address", "", "TCP address to serve the Hubble Observer API on too (e.g. :4244); empty: off")
	flag.StringVar(&o.apiListen, "api-listen-address", "", "loopback TCP address (127.0.0.1:PORT) to serve the agent API's GET requests on too (status, flows, services), for readers that reach the node only through a port-forward of this pod (kestrel scenario run --mode cluster); empty: off")
	flag.StringVar(&o.serviceCIDRs, "service-cluster-ip-range", "", "the cluster's service ranges, comma-separated (as kube-apiserver's flag)")
	flag.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	flag.StringVar(&o.monitorAggregation, "monitor-aggregation", "medium", "which forwarded packets become flows: none, low, medium or maximum (drops always do)")
	flag.DurationVar(&o.monitorInterval, "monitor-aggregation-interval", 5*time.Second, "how often an established flow is reported at the medium level")
	flag.UintVar(&o.ctTCPMax, "bpf-ct-global-tcp-max", 262144, "entries of the TCP conntrack table")
	flag.UintVar(&o.ctAnyMax, "bpf-ct-global-any-max", 131072, "entries of the non-TCP conntrack table")
	flag.BoolVar(&o.socketLB, "bpf-lb-sock", false, "socket-level load balancing: translate ClusterIPs at connect()/sendmsg() for every process below --cgroup-root (as Cilium's --bpf-lb-sock)")
	flag.StringVar(&o.cgroupRoot, "cgroup-root", "", "cgroup v2 directory the socket programs attach to (created if absent); empty: the root of the mounted cgroup v2 hierarchy, found in /proc/self/mountinfo")
	flag.DurationVar(&o.ctGCInterval, "conntrack-gc-interval", 30*time.Second, "how often expired conntrack entries are removed")
	flag.StringVar(&o.devices, "devices", "", "the node's own devices, comma-separated: NodePort, LoadBalancer, externalIPs and hostPorts from outside, and masquerade, are served there (empty: none)")
	flag.StringVar(&o.lbMode, "bpf-lb-mode", "snat", "how a NodePort flow reaches a backend on another node: snat or dsr (IPv4; IPv6 always snat)")
	flag.BoolVar(&o.masquerade, "enable-bpf-masquerade", false, "masquerade pods' traffic to the world to the node's address on --devices")
	flag.StringVar(&o.nativeCIDR4, "ipv4-native-routing-cidr", "", "IPv4 destinations pods reach with their own address (not masqueraded)")
	flag.StringVar(&o.nativeCIDR6, "ipv6-native-routing-cidr", "", "IPv6 destinations pods reach with their own address (not masqueraded)")
	flag.BoolVar(&o.l7Proxy, "enable-l7-proxy", true, "run the HTTP proxies that L7 policy rules redirect to (without them such flows are dropped as PROXY_UNAVAILABLE)")
	flag.UintVar(&o.fqdnMinTTL, "tofqdns-min-ttl", 0, "seconds an address the DNS proxy saw answered stays selected by toFQDNs at least, whatever its TTL (0: the answer's TTL)")
	flag.BoolVar(&o.kubeProxyReplacement, "kube-proxy-replacement", true, "serve Services in the datapath (ClusterIPs, NodePorts, the service range's SERVICE_UNALLOCATED drop); false: kube-proxy serves them on this node, and the agent writes no services, no service range and no node device programs (policy and CNI as before)")
	flag.StringVar(&o.cniConfDir, "cni-conf-dir", "", "write the node's CNI configuration (05-kestrel.conflist) here once the agent serves; empty: someone else writes it (sim)")
	flag.StringVar(&o.cniBinDir, "cni-bin-dir", "/opt/cni/bin", "where --install-cni puts kestrel-cni, and --cleanup removes it")
	flag.StringVar(&o.cniIPAMDir, "cni-ipam-dir", "/var/lib/kestrel/ipam", "the CNI plugin's address allocations (in the written CNI configuration)")
	flag.BoolVar(&o.installCNI, "install-cni", false, "copy the kestrel-cni beside this program into --cni-bin-dir and exit (the DaemonSet's init container)")
	flag.BoolVar(&o.cleanup, "cleanup", false, "remove everything Kestrel left on this node (CNI configuration and plugin, pins and so attached programs, node routes, IPAM state) and exit")
	flag.StringVar(&datapath.SysctlDir, "proc-sys-dir", "/proc/sys", "where to write the node's sysctls (a DaemonSet pod mounts the node's /proc/sys/net under it: its own /proc/sys is read-only)")
	flag.BoolVar(&o.nodeRoutes, "auto-direct-node-routes", false, "route every other node's pod ranges via its InternalIP (nodes on one L2 network, as kind's)")
	flag.Parse()
	// The downward API's values, where a DaemonSet gives them.
	fromEnv(&o.node, "NODE_NAME")
	fromEnv(&o.nodeIP, "NODE_IP")
	if o.installCNI || o.cleanup {
		log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("node", o.node)
		var err error
		if o.installCNI {
			err = installCNIBinary(o.cniBinDir)
		} else {
			err = cleanup(o, log)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "kestrel-agent:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "kestrel-agent:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("node", o.node)
	// client-go logs through klog; one format keeps the log readable.
	klog.SetSlogLogger(log.With("component", "client-go"))
	for name, v := range map[string]string{"node": o.node, "socket": o.socket, "bpffs": o.bpffs, "node-ip": o.nodeIP} {
		if v == "" {
			return fmt.Errorf("--%s is required", name)
		}
	}
	nodeIP, err := netip.ParseAddr(o.nodeIP)
	if err != nil {
		return fmt.Errorf("--node-ip: %w", err)
	}
	if err := checkBPFFS(o.bpffs); err != nil {
		return err
	}
	rc, err := restConfig(o.kubeconfig)
	if err != nil {
		return err
	}
	rc.UserAgent = "kestrel-agent/" + o.node
	rc.QPS, rc.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return err
	}

	if o.monitorInterval < time.Second || o.ctGCInterval <= 0 || o.ctTCPMax == 0 || o.ctAnyMax == 0 || o.ctTCPMax > 1<<24 || o.ctAnyMax > 1<<24 {
		return fmt.Errorf("--monitor-aggregation-interval must be at least 1s, --conntrack-gc-interval positive, and the conntrack sizes within 1..16777216")
	}
	var serviceCIDRs []netip.Prefix
	for _, s := range strings.Split(o.serviceCIDRs, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("--service-cluster-ip-range: %w", err)
		}
		serviceCIDRs = append(serviceCIDRs, p.Masked())
	}
	if !o.kubeProxyReplacement {
		// kube-proxy serves every frontend on this node: a service range
		// here would drop its ClusterIPs as SERVICE_UNALLOCATED before its
		// rules saw them, and the node device programs would answer its
		// NodePorts.
		if o.devices != "" || o.masquerade || o.socketLB {
			return fmt.Errorf("--devices, --enable-bpf-masquerade and --bpf-lb-sock serve services: not with --kube-proxy-replacement=false")
		}
		serviceCIDRs = nil
	}
	nd, devices, err := nodeDevice(o, nodeIP)
	if err != nil {
		return err
	}
	dp, err := datapath.Load(datapath.Config{
		NodeDevice:             nd,
		ServiceRanges:          serviceCIDRs,
		PinPath:                filepath.Join(o.bpffs, "maps"),
		MonitorAggregation:     datapath.MonitorAggregation(o.monitorAggregation),
		MonitorIntervalSeconds: uint32(o.monitorInterval / time.Second),
		CTTCPEntries:           uint32(o.ctTCPMax),
		CTAnyEntries:           uint32(o.ctAnyMax),
		SocketLB:               o.socketLB,
	})
	if err != nil {
		return err
	}
	// Closing releases our handles only: maps and links stay pinned, so the
	// next agent adopts them and pods keep their policy meanwhile.
	defer dp.Close()
	log.Info("datapath loaded", "pins", o.bpffs)
	if err := os.MkdirAll(filepath.Join(o.bpffs, "links"), 0o700); err != nil {
		return err
	}
	if !o.kubeProxyReplacement {
		// An earlier agent on this node may have served services: take its
		// node device programs away, as its pinned service entries are
		// (the first regeneration writes an empty set).
		if err := detachNodeDevices(filepath.Join(o.bpffs, "links")); err != nil {
			return err
		}
	}
	for _, dev := range devices {
		if _, err := dp.AttachNodeDevice(dev.Attrs().Index, filepath.Join(o.bpffs, "links", "netdev-"+dev.Attrs().Name)); err != nil {
			return fmt.Errorf("--devices %s: %w", dev.Attrs().Name, err)
		}
		log.Info("node device attached", "device", dev.Attrs().Name, "ipv4", nd.IPv4, "ipv6", nd.IPv6, "masquerade", nd.Masquerade, "dsr", nd.DSR)
	}
	var sockCgroup string
	if o.socketLB {
		if sockCgroup, err = cgroupRoot(o.cgroupRoot); err != nil {
			return err
		}
		links, err := dp.AttachCgroup(sockCgroup, filepath.Join(o.bpffs, "links", "cgroup"))
		if err != nil {
			return fmt.Errorf("--bpf-lb-sock: %w", err)
		}
		defer links.Close()
		log.Info("socket LB attached", "cgroup", sockCgroup)
	} else if err := datapath.DetachPinnedCgroup(filepath.Join(o.bpffs, "links", "cgroup")); err != nil {
		return fmt.Errorf("detach the socket LB an earlier run attached: %w", err)
	}

	d, err := daemon.New(daemon.Config{
		ServiceCIDRs:   serviceCIDRs,
		SocketLBCgroup: sockCgroup,
		KubeProxy:      !o.kubeProxyReplacement,
		Node:           o.node, NodeIP: nodeIP, ClusterName: o.clusterName,
		LinkPinDir:    filepath.Join(o.bpffs, "links"),
		RegistryPath:  filepath.Join(filepath.Dir(o.socket), "endpoints.json"),
		EnableL7Proxy: o.l7Proxy,
		ToFQDNsMinTTL: time.Duration(o.fqdnMinTTL) * time.Second,
	}, daemon.Kernel{Datapath: dp}, cs, dyn, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ln, err := api.Listen(o.socket)
	if err != nil {
		return fmt.Errorf("--socket: %w", err)
	}
	defer os.Remove(o.socket)
	go d.ReadFlows(ctx, dp.ReadEvent)
	go d.RunMaintenance(ctx, dp, o.monitorAggregation, o.ctGCInterval)
	if o.prometheusAddr != "" {
		metricsLn, err := net.Listen("tcp", o.prometheusAddr)
		if err != nil {
			return fmt.Errorf("--prometheus-serve-addr: %w", err)
		}
		metricsSrv := &http.Server{Handler: d.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second}
		go metricsSrv.Serve(metricsLn)
		defer metricsSrv.Close()
		log.Info("serving metrics", "addr", metricsLn.Addr().String())
	}
	if o.healthzAddr != "" {
		// As kube-proxy, a health port that cannot be opened is logged, not
		// fatal: the datapath matters more than its report.
		if healthLn, err := net.Listen("tcp", o.healthzAddr); err != nil {
			log.Error("cannot serve /healthz and /livez", "addr", o.healthzAddr, "err", err)
		} else {
			healthSrv := &http.Server{Handler: d.HealthHandler(), ReadHeaderTimeout: 10 * time.Second}
			go healthSrv.Serve(healthLn)
			defer healthSrv.Close()
			log.Info("serving /healthz and /livez", "addr", healthLn.Addr().String())
		}
	}
	if o.apiListen != "" {
		apiLn, err := api.ListenTCP(o.apiListen)
		if err != nil {
			return fmt.Errorf("--api-listen-address: %w", err)
		}
		go api.ServeReadOnly(ctx, apiLn, d, log)
		log.Info("serving the read-only agent API", "addr", apiLn.Addr().String())
	}
	if err := serveHubble(ctx, o, d, log); err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- api.Serve(ctx, ln, d, log) }()
	log.Info("serving the agent API", "socket", o.socket)
	if o.cniConfDir != "" {
		go func() {
			if err := writeCNIConf(ctx, cs, o.node, o.cniConfDir, o.socket, o.cniIPAMDir, log); err != nil && ctx.Err() == nil {
				log.Error("cannot write the CNI configuration", "err", err)
			}
		}()
	}
	if o.nodeRoutes {
		go syncNodeRoutes(ctx, cs, o.node, log)
	}
	runErr := d.Run(ctx)
	stop()
	if err := <-serveErr; err != nil && runErr == nil {
		runErr = err
	}
	if errors.Is(runErr, context.Canceled) {
		runErr = nil
	}
	log.Info("stopped; datapath state stays pinned for the next agent")
	return runErr
}

// checkBPFFS makes sure dir lies on a mounted bpf filesystem (creating dir
// there if needed): the agent mounts nothing, and pins elsewhere would fail
// or, worse, not survive as pins.
func checkBPFFS(dir string) error {
	probe := dir
	for {
		if _, err := os.Stat(probe); err == nil {
			break
		}
		parent := filepath.Dir(probe)
		if parent == probe {
			break
		}
		probe = parent
	}
	var st unix.Statfs_t
	if err := unix.Statfs(probe, &st); err != nil {
		return fmt.Errorf("--bpffs %s: %w", dir, err)
	}
	if st.Type != unix.BPF_FS_MAGIC {
		return fmt.Errorf("--bpffs %s: %s is not on a bpf filesystem (mount one first: mount -t bpf bpf /sys/fs/bpf)", dir, probe)
	}
	return os.MkdirAll(dir, 0o700)
}

// cgroupRoot is the cgroup v2 directory the socket programs attach to: dir,
// created if absent, once its nearest existing ancestor is in a cgroup v2
// hierarchy; or, without dir, the hierarchy's root.
func cgroupRoot(dir string) (string, error) {
	if dir == "" {
		root, err := datapath.Cgroup2Mount()
		if err != nil {
			return "", fmt.Errorf("--bpf-lb-sock: %w", err)
		}
		return root, nil
	}
	probe := dir
	for {
		if _, err := os.Stat(probe); err == nil {
			break
		}
		parent := filepath.Dir(probe)
		if parent == probe {
			break
		}
		probe = parent
	}
	if err := datapath.CheckCgroup2(probe); err != nil {
		return "", fmt.Errorf("--cgroup-root %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("--cgroup-root: %w", err)
	}
	return dir, nil
}

// serveHubble serves the Hubble Observer API on the unix socket and, if
// asked, on TCP, until ctx ends.
func serveHubble(ctx context.Context, o options, d *daemon.Daemon, log *slog.Logger) error {
	if o.hubbleSocket == "" {
		o.hubbleSocket = filepath.Join(filepath.Dir(o.socket), "hubble.sock")
	}
	var addrs []string
	if o.hubbleSocket != "-" {
		addrs = append(addrs, o.hubbleSocket)
	}
	if o.hubbleListen != "" {
		addrs = append(addrs, o.hubbleListen)
	}
	for _, addr := range addrs {
		ln, err := observe.Listen(addr)
		if err != nil {
			return fmt.Errorf("hubble %s: %w", addr, err)
		}
		srv := observe.NewGRPCServer(observe.NewServer(d, o.clusterName))
		go srv.Serve(ln) //nolint:errcheck // ends with Stop below
		go func() { <-ctx.Done(); srv.Stop() }()
		log.Info("serving the Hubble Observer API", "addr", addr)
	}
	return nil
}
