package datapath

import (
	"errors"
	"fmt"
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
	// PinPath, when set, is a bpffs directory where the maps are pinned by name:
	// a later Load with the same PinPath adopts them (state survives a restart).
	// Empty: the maps live only as long as this Datapath.
	PinPath string
}

// Datapath is one loaded instance of the pod-veth programs and their maps.
type Datapath struct {
	mu        sync.Mutex
	cfg       Config
	objs      lxcObjects
	innerSpec *ebpf.MapSpec
	events    *ringbuf.Reader
	policies  map[uint32]installedPolicy // endpoint id -> the inner map currently installed
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
	} {
		if v == 0 {
			continue
		}
		if err := spec.Variables[name].Set(v); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	return nil
}

// Load verifies and loads the programs and creates their maps (not pinned).
func Load(cfg Config) (*Datapath, error) {
	if err := CheckKernel(); err != nil {
		return nil, err
	}
	spec, err := loadLxc()
	if err != nil {
		return nil, fmt.Errorf("parse embedded datapath object: %w", err)
	}
	if err := cfg.apply(spec); err != nil {
		return nil, err
	}
	d := &Datapath{
		cfg:       cfg,
		innerSpec: spec.Maps["policy_maps"].InnerMap.Copy(),
		policies:  map[uint32]installedPolicy{},
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
	return d.objs.Close()
}

// Program returns the program for a hook, e.g. to attach it or benchmark it.
func (d *Datapath) Program(h Hook) *ebpf.Program {
	if h == FromContainer {
		return d.objs.FromContainer
	}
	return d.objs.ToContainer
}
