package datapath

import (
	"errors"
	"fmt"

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
// remote identity; Protocol 0 any protocol (ports must then be 0); PortLo 0 any
// port; PortHi 0 or equal to PortLo a single port, above PortLo a range. For
// ICMP the port is the ICMP type.
type PolicyEntry struct {
	Identity  uint32
	Direction Direction
	Protocol  uint8
	PortLo    uint16
	PortHi    uint16
	Action    PolicyAction
	ProxyPort uint16
	Cookie    uint32 // opaque to the datapath; reported in events
}

const (
	policyPrefixL3    = 40 // identity + direction
	policyPrefixProto = 48 // + protocol
	policyPrefixFull  = 64 // + port
	policyMaxEntries  = 65536
)

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
	case e.PortLo == 0 && e.PortHi != 0:
		return fmt.Errorf("end port %d given without a start port", e.PortHi)
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
	case e.PortLo == 0:
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
		k.Prefixlen = uint32(policyPrefixProto + p[1])
		out = append(out, k)
	}
	return out
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// maskKey keeps the first bits of the key's data (identity and direction are
// never shorter than policyPrefixL3).
func maskKey(k lxcPolicyKey, bits uint32) lxcPolicyKey {
	k.Prefixlen = bits
	if bits < policyPrefixProto {
		k.Protocol = 0
	}
	portBits := int(bits) - policyPrefixProto
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
		for bits := uint32(policyPrefixL3); bits <= k.Prefixlen; bits++ {
			if d, ok := out[maskKey(k, bits)]; ok && PolicyAction(d.Action) == PolicyDeny {
				delete(out, k)
				break
			}
		}
	}
	if len(out) > policyMaxEntries {
		return nil, fmt.Errorf("policy needs %d map entries, more than the map holds (%d)", len(out), policyMaxEntries)
	}
	return out, nil
}

// CheckPolicy reports whether entries would be accepted by SetPolicy, without
// touching the kernel: callers validate a whole change before applying any of it.
func CheckPolicy(entries []PolicyEntry) error {
	_, err := compilePolicy(entries)
	return err
}

// SetPolicy replaces an endpoint's policy at once: a new map is built and
// filled, then swapped in. On any error the old policy stays in force.
func (d *Datapath) SetPolicy(endpointID uint32, entries []PolicyEntry) error {
	contents, err := compilePolicy(entries)
	if err != nil {
		return fmt.Errorf("endpoint %d: %w", endpointID, err)
	}
	inner, err := ebpf.NewMap(d.innerSpec)
	if err != nil {
		return fmt.Errorf("endpoint %d: create policy map: %w", endpointID, err)
	}
	for k, v := range contents {
		if err := inner.Put(&k, &v); err != nil {
			inner.Close()
			return fmt.Errorf("endpoint %d: write policy entry: %w", endpointID, err)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.objs.PolicyMaps.Put(endpointID, inner); err != nil {
		inner.Close()
		return fmt.Errorf("endpoint %d: install policy map: %w", endpointID, err)
	}
	if old := d.policies[endpointID]; old != nil {
		old.Close()
	}
	d.policies[endpointID] = inner
	return nil
}

// DeletePolicy removes an endpoint's policy map.
func (d *Datapath) DeletePolicy(endpointID uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.objs.PolicyMaps.Delete(endpointID); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("endpoint %d: delete policy map: %w", endpointID, err)
	}
	if old := d.policies[endpointID]; old != nil {
		old.Close()
		delete(d.policies, endpointID)
	}
	return nil
}
