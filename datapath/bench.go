package datapath

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"

	"github.com/cilium/ebpf"
)

// BenchConfig says which flows the benchmark programs (bpf/bench.c) cycle
// through. Flow i has remote address RemoteFirst + i%RemoteCount and varied
// port PortFirst + i/RemoteCount: consecutive flows hit other ipcache keys.
type BenchConfig struct {
	RemoteFirst netip.Addr // IPv4
	RemoteCount uint32
	PortFirst   uint16
	// Flows: after this many packets the cursor is back at flow 0, so a run
	// cycles over flows set up beforehand. 0: never back, every packet is a
	// flow not seen before.
	Flows uint32
}

// BenchProgram is one kind of benchmark program; each exists for both hooks.
type BenchProgram int

const (
	BenchPipeline  BenchProgram = iota // the pipeline, on the rewritten packet
	BenchReply                         // the pipeline on replies: the varied port is the destination
	BenchEmpty                         // only the rewrite: subtracted from the others
	BenchReference                     // endpoint lookup + conntrack hit updated in place
)

// Bench is a loaded set of benchmark programs working on a Datapath's maps.
type Bench struct {
	cfg  BenchConfig
	objs benchObjects
}

// benchObjects names what LoadBench takes from the object: lxc.c's own
// from_container/to_container are left out, so they are not verified again.
type benchObjects struct {
	PipelineEgress   *ebpf.Program `ebpf:"bench_pipeline_egress"`
	PipelineIngress  *ebpf.Program `ebpf:"bench_pipeline_ingress"`
	ReplyEgress      *ebpf.Program `ebpf:"bench_reply_egress"`
	ReplyIngress     *ebpf.Program `ebpf:"bench_reply_ingress"`
	EmptyEgress      *ebpf.Program `ebpf:"bench_empty_egress"`
	EmptyIngress     *ebpf.Program `ebpf:"bench_empty_ingress"`
	ReferenceEgress  *ebpf.Program `ebpf:"bench_reference_egress"`
	ReferenceIngress *ebpf.Program `ebpf:"bench_reference_ingress"`
	Cursor           *ebpf.Map     `ebpf:"bench_cursor"`
}

// LoadBench loads the benchmark programs over d's maps (and with d's load
// settings), so what d's API writes (endpoints, ipcache, policy) is what they
// see, and the flows they create are in d's conntrack.
func LoadBench(d *Datapath, bc BenchConfig) (*Bench, error) {
	if !bc.RemoteFirst.Is4() || bc.RemoteCount == 0 {
		return nil, fmt.Errorf("benchmark: need an IPv4 first remote address and a remote count, got %v and %d", bc.RemoteFirst, bc.RemoteCount)
	}
	if uint64(ipv4Uint(bc.RemoteFirst))+uint64(bc.RemoteCount) > 1<<32 {
		return nil, fmt.Errorf("benchmark: %d remote addresses from %v run past 255.255.255.255", bc.RemoteCount, bc.RemoteFirst)
	}
	spec, err := loadLxcbench()
	if err != nil {
		return nil, fmt.Errorf("parse embedded benchmark object: %w", err)
	}
	if err := d.cfg.apply(spec); err != nil {
		return nil, err
	}
	for name, v := range map[string]uint32{
		"bench_remote_first": ipv4Uint(bc.RemoteFirst),
		"bench_remote_count": bc.RemoteCount,
		"bench_port_first":   uint32(bc.PortFirst),
		"bench_flows":        bc.Flows,
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("benchmark: set %s: %w", name, err)
		}
	}
	// Every map of the pipeline must be d's own: a map of its own would make
	// the benchmark programs see an empty state and report nonsense. Data
	// sections are per object, which is right for constants and for the BTF
	// anchors (unused_*), and wrong for anything else kept in a global.
	shared := d.mapsByName()
	replace := map[string]*ebpf.Map{}
	for name, ms := range spec.Maps {
		ms.Pinning = ebpf.PinNone
		switch m, ok := shared[name]; {
		case ok:
			replace[name] = m
		case name == "bench_cursor", strings.HasPrefix(name, ".rodata"):
		case strings.HasPrefix(name, ".bss"), strings.HasPrefix(name, ".data"):
			for vname, v := range spec.Variables {
				if v.SectionName == name && !strings.HasPrefix(vname, "unused_") {
					return nil, fmt.Errorf("benchmark: global %s in %s would not be shared with the datapath (keep state in a named map)", vname, name)
				}
			}
		default:
			return nil, fmt.Errorf("benchmark: the object has map %q, which the datapath does not share (LoadBench must learn to share it)", name)
		}
	}
	b := &Bench{cfg: bc}
	if err := spec.LoadAndAssign(&b.objs, &ebpf.CollectionOptions{MapReplacements: replace}); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("verifier rejected the benchmark programs: %+v", ve)
		}
		return nil, fmt.Errorf("load benchmark programs: %w", err)
	}
	return b, nil
}

// mapsByName lists the datapath's maps under their C names.
func (d *Datapath) mapsByName() map[string]*ebpf.Map {
	out := map[string]*ebpf.Map{}
	v := reflect.ValueOf(d.objs.lxcMaps)
	for i := range v.NumField() {
		name := v.Type().Field(i).Tag.Get("ebpf")
		if m, ok := v.Field(i).Interface().(*ebpf.Map); ok && m != nil && name != "" {
			out[name] = m
		}
	}
	return out
}

func ipv4Uint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// Program returns one benchmark program for a hook.
func (b *Bench) Program(kind BenchProgram, h Hook) *ebpf.Program {
	progs := map[BenchProgram][2]*ebpf.Program{
		BenchPipeline:  {b.objs.PipelineEgress, b.objs.PipelineIngress},
		BenchReply:     {b.objs.ReplyEgress, b.objs.ReplyIngress},
		BenchEmpty:     {b.objs.EmptyEgress, b.objs.EmptyIngress},
		BenchReference: {b.objs.ReferenceEgress, b.objs.ReferenceIngress},
	}[kind]
	if h == FromContainer {
		return progs[0]
	}
	return progs[1]
}

// Seed puts each CPU's cursor at a flow: CPU i at first + i*stride. The
// kernel may move a run to another CPU midway; a stride of at least the
// packets of one run keeps the CPUs' flows apart, stride 0 starts them all
// at the same flow. Seeding also zeroes the counts (Counts).
func (b *Bench) Seed(first, stride uint32) error {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("benchmark: %w", err)
	}
	states := make([]lxcbenchBenchState, cpus)
	for i := range states {
		flow := uint64(first) + uint64(i)*uint64(stride)
		if b.cfg.Flows != 0 && flow >= uint64(b.cfg.Flows) {
			return fmt.Errorf("benchmark: flow %d is past the %d flows cycled over", flow, b.cfg.Flows)
		}
		states[i] = lxcbenchBenchState{
			Flow:   uint32(flow),
			Remote: uint32(flow % uint64(b.cfg.RemoteCount)),
			Port:   uint32(b.cfg.PortFirst) + uint32(flow/uint64(b.cfg.RemoteCount)),
		}
	}
	if err := b.objs.Cursor.Put(uint32(0), states); err != nil {
		return fmt.Errorf("benchmark: seed cursor: %w", err)
	}
	return nil
}

// BenchCounts is what the programs counted since Seed, summed over CPUs.
type BenchCounts struct {
	// Packets the programs ran on. It can exceed a run's repeat count: a run
	// a signal interrupts is run again whole, after the packets it had done.
	Packets uint64
	// Reference packets that found no endpoint or no conntrack entry (the
	// reference is only meaningful at zero).
	Misses uint64
}

// Counts returns what the programs counted since Seed.
func (b *Bench) Counts() (BenchCounts, error) {
	var states []lxcbenchBenchState
	if err := b.objs.Cursor.Lookup(uint32(0), &states); err != nil {
		return BenchCounts{}, fmt.Errorf("benchmark: read cursor: %w", err)
	}
	var c BenchCounts
	for _, s := range states {
		c.Packets += s.Packets
		c.Misses += uint64(s.Misses)
	}
	return c, nil
}

// Close releases the benchmark programs (the maps stay with the Datapath).
func (b *Bench) Close() error {
	return errors.Join(b.objs.PipelineEgress.Close(), b.objs.PipelineIngress.Close(),
		b.objs.ReplyEgress.Close(), b.objs.ReplyIngress.Close(),
		b.objs.EmptyEgress.Close(), b.objs.EmptyIngress.Close(),
		b.objs.ReferenceEgress.Close(), b.objs.ReferenceIngress.Close(), b.objs.Cursor.Close())
}
