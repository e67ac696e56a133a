package policy

import (
	"sort"

	"github.com/kestrelnet/kestrel/agent/identity"
)

// portSpec is a protocol and destination port range; Protocol 0 is any
// protocol and port, AnyPort every port of Protocol. Without AnyPort the
// range is exact, port (ICMP type) 0 included.
type portSpec struct {
	Protocol uint8
	AnyPort  bool
	PortLo   uint16
	PortHi   uint16
	Proxy    uint16
}

var anyPort = []portSpec{{}}

// builder accumulates the map state of one endpoint.
type builder struct {
	pol *EndpointPolicy
	// http are the HTTP rules of the toPorts element being added.
	http []HTTPRule
	// serverNames are its TLS server names, kafka its Kafka rules.
	serverNames []string
	kafka       []KafkaRule
	// dns are the DNS rules of the toPorts element being added.
	dns []FQDNSelector
	// addrIDs are the address identities of split pod identities: a key
	// for such a pod identity is written for its addresses' identities too.
	addrIDs map[identity.NumericIdentity][]identity.NumericIdentity
}

func newBuilder(addrIDs map[identity.NumericIdentity][]identity.NumericIdentity) *builder {
	return &builder{pol: &EndpointPolicy{Entries: map[Key]Entry{}}, addrIDs: addrIDs}
}

// add puts one key per (peer, port). peers nil means any identity.
func (b *builder) add(dir Direction, peers idSet, ports []portSpec, deny bool, o Origin) {
	ids := []identity.NumericIdentity{0}
	if peers != nil {
		all := idSet{}
		for id := range peers {
			all[id] = true
			for _, aid := range b.addrIDs[id] {
				all[aid] = true
			}
		}
		ids = all.sorted()
	}
	for _, id := range ids {
		for _, ps := range ports {
			b.addKey(Key{Identity: id, Direction: dir, Protocol: ps.Protocol, AnyPort: ps.AnyPort && ps.Protocol != ProtoAny, PortLo: ps.PortLo, PortHi: ps.PortHi}, deny, ps.Proxy, o)
		}
	}
}

func (b *builder) addKey(k Key, deny bool, proxy uint16, o Origin) {
	if k.PortHi < k.PortLo {
		k.PortHi = k.PortLo
	}
	e := b.pol.Entries[k]
	e.Deny = e.Deny || deny
	if !e.Deny && proxy != 0 && (e.ProxyPort == 0 || proxy < e.ProxyPort) {
		e.ProxyPort = proxy
	}
	if !deny && proxy == 0 {
		e.L7Wildcard = true
	}
	if !deny && proxy != 0 {
		e.HTTP = append(e.HTTP, b.http...)
		e.ServerNames = append(e.ServerNames, b.serverNames...)
		e.Kafka = append(e.Kafka, b.kafka...)
		e.DNS = append(e.DNS, b.dns...)
	}
	if e.Deny {
		e.ProxyPort = 0
	}
	e.Origins = addOrigin(e.Origins, o)
	b.pol.Entries[k] = e
}

func addOrigin(os []Origin, o Origin) []Origin {
	for _, x := range os {
		if x == o {
			return os
		}
	}
	os = append(os, o)
	sort.Slice(os, func(i, j int) bool { return os[i].String() < os[j].String() })
	return os
}

// covers reports whether traffic matching narrow always matches wide.
func covers(wide, narrow Key) bool {
	if wide.Direction != narrow.Direction {
		return false
	}
	if wide.Identity != 0 && wide.Identity != narrow.Identity {
		return false
	}
	if wide.Protocol == ProtoAny {
		return true
	}
	if wide.Protocol != narrow.Protocol {
		return false
	}
	if wide.AnyPort {
		return true
	}
	return !narrow.AnyPort && wide.PortLo <= narrow.PortLo && max(narrow.PortHi, narrow.PortLo) <= max(wide.PortHi, wide.PortLo)
}

// finish turns every allow key that a deny key covers into a deny, so that a
// datapath preferring the most specific key still lets deny win.
func (b *builder) finish() *EndpointPolicy {
	var denies []Key
	for k, e := range b.pol.Entries {
		if e.Deny {
			denies = append(denies, k)
		}
	}
	for k, e := range b.pol.Entries {
		if e.Deny {
			continue
		}
		for _, d := range denies {
			if covers(d, k) {
				e.Deny, e.ProxyPort = true, 0
				for _, o := range b.pol.Entries[d].Origins {
					e.Origins = addOrigin(e.Origins, o)
				}
			}
		}
		b.pol.Entries[k] = e
	}
	return b.pol
}

// enforce makes direction d default-deny, on the word of origin.
func (b *builder) enforce(d Direction, origin Origin) {
	by := &b.pol.IngressEnforcedBy
	if d == Egress {
		by = &b.pol.EgressEnforcedBy
		b.pol.EgressEnforced = true
	} else {
		b.pol.IngressEnforced = true
	}
	for _, o := range *by {
		if o == origin {
			return
		}
	}
	*by = append(*by, origin)
}
