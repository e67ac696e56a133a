package datapath

import (
	"errors"
	"fmt"
	"maps"
	"sync"

	"github.com/cilium/ebpf"
)

// PolicyAction is what a policy entry does with a new flow.
type PolicyAction uint8

const (
	PolicyAllow    = PolicyAction(lxcPolicyActionPOLICY_ALLOW)
	PolicyDeny     = PolicyAction(lxcPolicyActionPOLICY_DENY)
	PolicyRedirect = PolicyAction(lxcPolicyActionPOLICY_REDIRECT)
)

// PolicyEntry is one rule of an endpoint's policy. Identity 0 matches any
// remote identity; Protocol 0 any protocol (ports must then be unset). With a
// protocol, AnyPort says "every port"; without it the entry matches exactly
// PortLo (PortHi 0 or equal to PortLo) or the range PortLo..PortHi. Port 0 is
// a port like any other: for ICMP the port is the ICMP type, and type 0 (echo
// reply) must not turn into "any type", so "any" is never spelled as 0.
type PolicyEntry struct {
	Identity  uint32
	Direction Direction
	Protocol  uint8
	AnyPort   bool
	PortLo    uint16
	PortHi    uint16
	Action    PolicyAction
	ProxyPort uint16
	Cookie    uint32 // opaque to the datapath; reported in events
}

const (
	policyPrefixL3    = uint32(lxcPolicyPrefixPOLICY_PREFIX_L3)
	policyPrefixProto = uint32(lxcPolicyPrefixPOLICY_PREFIX_PROTO)
)

// policyMapSize is the capacity of one endpoint's policy map, as compiled.
var policyMapSize = sync.OnceValues(func() (int, error) {
	spec, err := loadLxc()
	if err != nil {
		return 0, err
	}
	return int(spec.Maps["policy_maps"].InnerMap.MaxEntries), nil
})

// portPrefixes covers [lo, hi] with aligned power-of-two blocks: (start, bits).
func portPrefixes(lo, hi uint16) (out [][2]int) {
	for l := int(lo); l <= int(hi); {
		size := 1
		for l%(size*2) == 0 && l+size*2-1 <= int(hi) && size < 1<<16 {
			size *= 2
		}
		bits := 16
		for s := size; s > 1; s >>= 1 {
			bits--
		}
		out = append(out, [2]int{l, bits})
		l += size
	}
	return out
}

func (e PolicyEntry) validate() error {
	switch {
	case e.Protocol == 0 && (e.PortLo != 0 || e.PortHi != 0):
		return fmt.Errorf("ports %d-%d given without a protocol", e.PortLo, e.PortHi)
	case e.AnyPort && (e.PortLo != 0 || e.PortHi != 0):
		return fmt.Errorf("ports %d-%d given with AnyPort", e.PortLo, e.PortHi)
	case e.Protocol != 0 && !e.AnyPort && e.PortLo == 0 && e.PortHi == 0 && !portZeroMeaningful(e.Protocol):
		// Port 0 is never a destination for these protocols: an entry
		// saying it is a caller that meant "any port" without AnyPort.
		return fmt.Errorf("protocol %d port 0 is not a destination port; set AnyPort for every port", e.Protocol)
	case e.PortHi != 0 && e.PortHi < e.PortLo:
		return fmt.Errorf("port range %d-%d is reversed", e.PortLo, e.PortHi)
	case e.Action > PolicyRedirect:
		return fmt.Errorf("unknown action %d", e.Action)
	case e.Action == PolicyRedirect && e.ProxyPort == 0:
		return fmt.Errorf("redirect without a proxy port")
	}
	return nil
}

// keys expands an entry into LPM keys.
func (e PolicyEntry) keys() []lxcPolicyKey {
	base := lxcPolicyKey{Identity: e.Identity, Egress: uint8(e.Direction)}
	switch {
	case e.Protocol == 0:
		base.Prefixlen = policyPrefixL3
		return []lxcPolicyKey{base}
	case e.AnyPort:
		base.Protocol = e.Protocol
		base.Prefixlen = policyPrefixProto
		return []lxcPolicyKey{base}
	}
	hi := e.PortHi
	if hi == 0 {
		hi = e.PortLo
	}
	var out []lxcPolicyKey
	for _, p := range portPrefixes(e.PortLo, hi) {
		k := base
		k.Protocol = e.Protocol
		k.Dport = htons(uint16(p[0]))
		k.Prefixlen = policyPrefixProto + uint32(p[1])
		out = append(out, k)
	}
	return out
}

// portZeroMeaningful reports whether port 0 is a real value of the
// protocol's policy port: the ICMP and ICMPv6 type (0 is IPv4 echo reply).
// For other protocols the datapath also puts 0 in the port of packets
// without ports (GRE, ESP, ...), so an exact port 0 entry is accepted there.
func portZeroMeaningful(proto uint8) bool {
	switch proto {
	case 6, 17, 132: // TCP, UDP, SCTP
		return false
	}
	return true
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// maskKey keeps the first bits of the key's data (identity and direction are
// never shorter than policyPrefixL3).
func maskKey(k lxcPolicyKey, bits uint32) lxcPolicyKey {
	k.Prefixlen = bits
	if bits < policyPrefixProto {
		k.Protocol = 0
	}
	portBits := int(bits) - int(policyPrefixProto)
	if portBits < 0 {
		portBits = 0
	}
	port := htons(k.Dport)
	if portBits < 16 {
		port &= ^uint16(0) << (16 - portBits)
	}
	k.Dport = htons(port)
	return k
}

func actionRank(a PolicyAction) int {
	switch a {
	case PolicyDeny:
		return 2
	case PolicyRedirect:
		return 1
	}
	return 0
}

// compilePolicy turns entries into the exact LPM contents. Within one identity a
// longest-prefix lookup returns only the narrowest match, so an allow nested in
// a broader (or equal) deny would hide that deny: such allows are left out.
func compilePolicy(entries []PolicyEntry) (map[lxcPolicyKey]lxcPolicyEntry, error) {
	out := map[lxcPolicyKey]lxcPolicyEntry{}
	for i, e := range entries {
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("policy entry %d: %w", i, err)
		}
		for _, k := range e.keys() {
			v := lxcPolicyEntry{Action: uint8(e.Action), Prefixlen: uint8(k.Prefixlen), ProxyPort: e.ProxyPort, Cookie: e.Cookie}
			if old, ok := out[k]; ok && actionRank(PolicyAction(old.Action)) >= actionRank(e.Action) {
				continue
			}
			out[k] = v
		}
	}
	for k, v := range out {
		if PolicyAction(v.Action) == PolicyDeny {
			continue
		}
		for bits := policyPrefixL3; bits <= k.Prefixlen; bits++ {
			if d, ok := out[maskKey(k, bits)]; ok && PolicyAction(d.Action) == PolicyDeny {
				delete(out, k)
				break
			}
		}
	}
	limit, err := policyMapSize()
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, fmt.Errorf("policy needs %d map entries, more than the map holds (%d)", len(out), limit)
	}
	return out, nil
}

// CheckPolicy reports whether entries would be accepted by SetPolicy, without
// touching the kernel: callers validate a whole change before applying any of it.
func CheckPolicy(entries []PolicyEntry) error {
	_, err := compilePolicy(entries)
	return err
}

// SetPolicy replaces one endpoint's policy at once; see SetPolicies.
func (d *Datapath) SetPolicy(endpointID uint32, entries []PolicyEntry) error {
	return d.SetPolicies(map[uint32][]PolicyEntry{endpointID: entries})
}

// SetPolicies replaces the policies of several endpoints. Each endpoint's new
// map is built and filled aside, then swapped in with one update, so no
// endpoint ever sees half a policy. Everything is validated and built before
// the first swap; on an error no endpoint's policy has changed, unless the
// kernel refused the swap itself, which names the endpoint.
//
// The kernel waits for an RCU grace period after each map-in-map update
// (about 10 ms here). Policies identical to the installed ones are left
// alone, and the swaps run concurrently so their grace periods overlap.
func (d *Datapath) SetPolicies(policies map[uint32][]PolicyEntry) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	built := map[uint32]installedPolicy{}
	closeBuilt := func() {
		for _, p := range built {
			p.m.Close()
		}
	}
	for id, entries := range policies {
		contents, err := compilePolicy(entries)
		if err != nil {
			closeBuilt()
			return fmt.Errorf("endpoint %d: %w", id, err)
		}
		if old, ok := d.policies[id]; ok && maps.Equal(old.contents, contents) {
			continue
		}
		inner, err := d.fillPolicyMap(contents)
		if err != nil {
			closeBuilt()
			return fmt.Errorf("endpoint %d: %w", id, err)
		}
		built[id] = installedPolicy{m: inner, contents: contents}
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := map[uint32]error{}
	for id, p := range built {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.objs.PolicyMaps.Put(id, p.m); err != nil {
				mu.Lock()
				failed[id] = fmt.Errorf("endpoint %d: install policy map: %w", id, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var errs []error
	swapped := map[uint32]bool{}
	for id, p := range built {
		if err := failed[id]; err != nil {
			p.m.Close()
			errs = append(errs, err)
			continue
		}
		if old, ok := d.policies[id]; ok {
			old.m.Close()
		}
		d.policies[id] = p
		swapped[id] = true
	}
	if len(swapped) > 0 {
		errs = append(errs, d.bumpRevisions(swapped))
	}
	return errors.Join(errs...)
}

func (d *Datapath) fillPolicyMap(contents map[lxcPolicyKey]lxcPolicyEntry) (*ebpf.Map, error) {
	inner, err := ebpf.NewMap(d.innerSpec)
	if err != nil {
		return nil, fmt.Errorf("create policy map: %w", err)
	}
	for k, v := range contents {
		if err := inner.Put(&k, &v); err != nil {
			inner.Close()
			return nil, fmt.Errorf("write policy entry: %w", err)
		}
	}
	return inner, nil
}

// DeletePolicy removes an endpoint's policy map.
func (d *Datapath) DeletePolicy(endpointID uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.objs.PolicyMaps.Delete(endpointID); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("endpoint %d: delete policy map: %w", endpointID, err)
	}
	if old, ok := d.policies[endpointID]; ok {
		old.m.Close()
		delete(d.policies, endpointID)
	}
	return d.bumpRevisions(map[uint32]bool{endpointID: true})
}

// installedPolicy is an endpoint's inner map and what was written to it.
type installedPolicy struct {
	m        *ebpf.Map
	contents map[lxcPolicyKey]lxcPolicyEntry
}
