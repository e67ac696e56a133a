package datapath

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/ringbuf"
)

// Config holds load-time settings (const volatile globals in C).
type Config struct {
	// Conntrack lifetimes in seconds; zero keeps the compiled default.
	CTLifetimeSYN, CTLifetimeTCP, CTLifetimeNonTCP, CTLifetimeClose uint32
	// Conntrack table sizes in entries (TCP, and every other protocol); zero
	// keeps the compiled default (262144 and 131072).
	CTTCPEntries, CTAnyEntries uint32
	// MonitorAggregation says which forwarded packets are reported as events
	// (drops always are); the zero value is MonitorAggregationMedium.
	MonitorAggregation MonitorAggregation
	// MonitorIntervalSeconds is how often an established flow is reported at
	// the medium level; zero keeps 5.
	MonitorIntervalSeconds uint32
	// EventRingBytes sizes the event ring buffer (a power of two, at least a
	// page); zero keeps 4 MiB.
	EventRingBytes uint32
	// PinPath, when set, is a bpffs directory where the maps are pinned by name:
	// a later Load with the same PinPath adopts them (state survives a restart).
	// Empty: the maps live only as long as this Datapath.
	PinPath string
	// LBServiceEntries and LBBackendSlots size the service maps
	// (frontends plus frontend addresses, and backends over all services);
	// zero keeps ServiceEntriesMax and BackendSlotsMax.
	LBServiceEntries, LBBackendSlots uint32
	// ServiceRanges are the service CIDRs (kube-apiserver's
	// --service-cluster-ip-range), at most one per family: a pod's packet
	// to an address in them that no service frontend holds is dropped as
	// SERVICE_UNALLOCATED.
	ServiceRanges []netip.Prefix
	// HairpinIPv4 and HairpinIPv6 are the source a pod sees on its own
	// packets when it reaches itself through a service; never a pod's
	// address. Zero keeps 169.254.42.1 and fdfe::2a01.
	HairpinIPv4, HairpinIPv6 netip.Addr
	// NodeDevice configures the programs for the node's own device.
	NodeDevice NodeDevice
	// SocketLB also loads the socket-level load balancer (bpf/sock.c, as
	// Cilium's --bpf-lb-sock): cgroup programs over the same service maps
	// that translate a service frontend to a backend at connect() and
	// sendmsg(), so a pod's connection goes straight to the backend.
	// AttachCgroup attaches them.
	SocketLB bool
	// TestDevices makes a datapath for BPF_PROG_TEST_RUN: endpoints without a
	// device or MAC get a dummy device in a private network namespace and
	// TestMAC, and Run picks the device a frame crosses (sandbox.go).
	TestDevices bool
}

// MonitorAggregation is Cilium's monitor aggregation level.
type MonitorAggregation string

const (
	MonitorAggregationNone    MonitorAggregation = "none"    // every packet
	MonitorAggregationLow     MonitorAggregation = "low"     // as medium, one report per flow per second
	MonitorAggregationMedium  MonitorAggregation = "medium"  // drops, new flows, first TCP flags, one report per flow per interval
	MonitorAggregationMaximum MonitorAggregation = "maximum" // drops, new flows, first SYN/FIN/RST per direction
)

func (m MonitorAggregation) level() (uint8, error) {
	switch m {
	case MonitorAggregationNone:
		return uint8(lxcMonitorAggregationMONITOR_AGG_NONE), nil
	case MonitorAggregationLow:
		return uint8(lxcMonitorAggregationMONITOR_AGG_LOW), nil
	case "", MonitorAggregationMedium:
		return uint8(lxcMonitorAggregationMONITOR_AGG_MEDIUM), nil
	case MonitorAggregationMaximum:
		return uint8(lxcMonitorAggregationMONITOR_AGG_MAXIMUM), nil
	}
	return 0, fmt.Errorf("monitor aggregation %q: want none, low, medium or maximum", string(m))
}

// Datapath is one loaded instance of the pod-veth programs and their maps.
type Datapath struct {
	mu         sync.Mutex
	cfg        Config
	objs       lxcObjects
	innerSpec  *ebpf.MapSpec
	events     *ringbuf.Reader
	policies   map[uint32]installedPolicy // endpoint id -> the inner map currently installed
	revision   uint32                     // the last policy revision given to an endpoint
	sandbox    *sandbox                   // for test runs (Config.TestDevices)
	svc        *serviceState              // what the service maps hold (service.go)
	maglevSpec *ebpf.MapSpec              // a service's Maglev table (inner map of lb_maglev)
	sock       *socketLB                  // the socket programs (Config.SocketLB), else nil
}

// MissingFeatureError names a kernel feature the datapath needs and lacks.
type MissingFeatureError struct {
	Feature string
	Err     error
}

func (e *MissingFeatureError) Error() string {
	return fmt.Sprintf("kernel lacks %s: %v", e.Feature, e.Err)
}

func (e *MissingFeatureError) Unwrap() error { return e.Err }

// CheckKernel reports the first kernel feature the datapath needs that is absent.
func CheckKernel() error {
	checks := []struct {
		name string
		fn   func() error
	}{
		{"BPF program type sched_cls", func() error { return features.HaveProgramType(ebpf.SchedCLS) }},
		{"BPF map type lpm_trie", func() error { return features.HaveMapType(ebpf.LPMTrie) }},
		{"BPF map type lru_hash", func() error { return features.HaveMapType(ebpf.LRUHash) }},
		{"BPF map type hash_of_maps", func() error { return features.HaveMapType(ebpf.HashOfMaps) }},
		{"BPF map type ringbuf", func() error { return features.HaveMapType(ebpf.RingBuf) }},
	}
	for _, c := range checks {
		err := c.fn()
		switch {
		case errors.Is(err, ebpf.ErrNotSupported):
			return &MissingFeatureError{Feature: c.name, Err: err}
		case err != nil:
			return fmt.Errorf("probe kernel for %s: %w", c.name, err)
		}
	}
	return nil
}

// apply sets the load-time settings in spec, the datapath's object or one
// that includes it (the benchmark object, bench.go).
func (cfg Config) apply(spec *ebpf.CollectionSpec) error {
	for name, v := range map[string]uint32{
		"ct_lifetime_syn":    cfg.CTLifetimeSYN,
		"ct_lifetime_tcp":    cfg.CTLifetimeTCP,
		"ct_lifetime_nontcp": cfg.CTLifetimeNonTCP,
		"ct_lifetime_close":  cfg.CTLifetimeClose,
		"monitor_interval_s": cfg.MonitorIntervalSeconds,
	} {
		if v == 0 {
			continue
		}
		if err := spec.Variables[name].Set(v); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	level, err := cfg.MonitorAggregation.level()
	if err != nil {
		return err
	}
	if err := spec.Variables["monitor_aggregation_level"].Set(level); err != nil {
		return fmt.Errorf("set monitor aggregation: %w", err)
	}
	if cfg.TestDevices {
		if err := spec.Variables["proxy_test_run"].Set(uint32(1)); err != nil {
			return fmt.Errorf("set proxy_test_run: %w", err)
		}
	}
	if err := cfg.applyServices(spec); err != nil {
		return err
	}
	if err := cfg.NodeDevice.apply(spec); err != nil {
		return err
	}
	for name, n := range map[string]uint32{"ct_tcp": cfg.CTTCPEntries, "ct_any": cfg.CTAnyEntries, "events": cfg.EventRingBytes,
		"lb_services": cfg.LBServiceEntries, "lb_revnat": cfg.LBServiceEntries, "lb_backends": cfg.LBBackendSlots} {
		if n != 0 {
			spec.Maps[name].MaxEntries = n
		}
	}
	return nil
}

// Load verifies and loads the programs and creates their maps (not pinned).
func Load(cfg Config) (*Datapath, error) {
	if err := CheckKernel(); err != nil {
		return nil, err
	}
	if cfg.SocketLB {
		if err := features.HaveProgramType(ebpf.CGroupSockAddr); err != nil {
			return nil, &MissingFeatureError{Feature: "BPF program type cgroup_sock_addr (socket LB)", Err: err}
		}
	}
	spec, err := loadLxc()
	if err != nil {
		return nil, fmt.Errorf("parse embedded datapath object: %w", err)
	}
	if err := cfg.apply(spec); err != nil {
		return nil, err
	}
	d := &Datapath{
		cfg:        cfg,
		innerSpec:  spec.Maps["policy_maps"].InnerMap.Copy(),
		policies:   map[uint32]installedPolicy{},
		svc:        newServiceState(),
		maglevSpec: spec.Maps["lb_maglev"].InnerMap.Copy(),
	}
	var opts ebpf.CollectionOptions
	if cfg.PinPath != "" {
		if err := os.MkdirAll(cfg.PinPath, 0o700); err != nil {
			return nil, fmt.Errorf("create pin directory: %w", err)
		}
		opts.Maps.PinPath = cfg.PinPath
	} else {
		for _, m := range spec.Maps {
			m.Pinning = ebpf.PinNone
		}
	}
	if err := spec.LoadAndAssign(&d.objs, &opts); err != nil {
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("maps pinned under %s were made by another datapath version (remove them to start afresh): %w", cfg.PinPath, err)
		}
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("verifier rejected the datapath: %+v", ve)
		}
		return nil, fmt.Errorf("load datapath: %w", err)
	}
	d.events, err = ringbuf.NewReader(d.objs.Events)
	if err != nil {
		d.objs.Close()
		return nil, fmt.Errorf("open event ring buffer: %w", err)
	}
	if err := d.highestRevision(); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.adoptServices(); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.writeNonMasquerade(cfg.NodeDevice.NonMasqueradeCIDRs); err != nil {
		d.Close()
		return nil, err
	}
	if cfg.SocketLB {
		if d.sock, err = d.loadSocketLB(); err != nil {
			d.Close()
			return nil, err
		}
	}
	if cfg.TestDevices {
		if d.sandbox, err = newSandbox(); err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

// Close releases the programs and maps.
func (d *Datapath) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.policies {
		p.m.Close()
	}
	d.events.Close()
	if d.sandbox != nil {
		d.sandbox.close()
	}
	if d.sock != nil {
		d.sock.objs.Close()
	}
	return d.objs.Close()
}

// Program returns the program for a hook, e.g. to attach it or benchmark it.
func (d *Datapath) Program(h Hook) *ebpf.Program {
	switch h {
	case FromContainer:
		return d.objs.FromContainer
	case FromNetdev:
		return d.objs.FromNetdev
	case ToNetdev:
		return d.objs.ToNetdev
	}
	return d.objs.ToContainer
}
