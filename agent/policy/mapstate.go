package policy

import (
	"fmt"
	"sort"

	"github.com/kestrelnet/kestrel/agent/identity"
)

// Direction of traffic relative to the endpoint the policy is computed for.
type Direction uint8

const (
	Ingress Direction = 0
	Egress  Direction = 1
)

func (d Direction) String() string {
	if d == Egress {
		return "egress"
	}
	return "ingress"
}

// IP protocol numbers used in keys. ProtoAny (0) wildcards protocol and port.
const (
	ProtoAny    uint8 = 0
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
	ProtoSCTP   uint8 = 132
)

// Key is one policy map key: which remote identity, in which direction, on which
// protocol and destination port range. Identity 0 means any identity; Protocol 0
// means any protocol (ports must then be 0). AnyPort means every port of
// Protocol; otherwise PortLo..PortHi is exact, and 0 is a port like any other:
// for ICMP the "port" is the ICMP type, and type 0 is echo reply, not "any".
// PortHi == PortLo for a single port; PortHi > PortLo for an endPort range.
type Key struct {
	Identity  identity.NumericIdentity
	Direction Direction
	Protocol  uint8
	AnyPort   bool
	PortLo    uint16
	PortHi    uint16
}

// Origin names the policy object a map entry was derived from.
type Origin struct {
	Kind      string // NetworkPolicy, CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy
	Namespace string
	Name      string
}

func (o Origin) String() string {
	if o.Namespace == "" {
		return o.Kind + "/" + o.Name
	}
	return o.Kind + "/" + o.Namespace + "/" + o.Name
}

// Entry is the value of a policy map key. Deny wins over any allow; a non-zero
// ProxyPort means allow-and-redirect to the L7 proxy listening on that port.
//
// For a redirected entry, HTTP holds the HTTP rules of every policy rule that
// redirects the key, and L7Wildcard says some rule allows the key without L7
// rules: the proxy then allows every request, as Cilium does.
type Entry struct {
	Deny       bool
	ProxyPort  uint16
	Origins    []Origin
	HTTP       []HTTPRule
	L7Wildcard bool
	// ServerNames are the TLS server names (ServerNameMatches patterns) of
	// every rule redirecting the key for them.
	ServerNames []string
	// Kafka are the Kafka rules of every rule redirecting the key for them.
	Kafka []KafkaRule
	// DNS holds the DNS rules (matchName/matchPattern on queries) of every
	// policy rule that redirects the key to the DNS proxy.
	DNS []FQDNSelector
}

// EndpointPolicy is the complete policy state of one endpoint. A direction whose
// Enforced flag is false is allow-all (no policy selects the endpoint that way).
type EndpointPolicy struct {
	IngressEnforced bool
	EgressEnforced  bool
	Entries         map[Key]Entry
	// IngressEnforcedBy and EgressEnforcedBy name the policies that made the
	// direction default-deny: what decided a drop no entry explains
	// (POLICY_DENIED).
	IngressEnforcedBy []Origin
	EgressEnforcedBy  []Origin
}

// Enforced reports whether the endpoint is default-deny in direction d.
func (p *EndpointPolicy) Enforced(d Direction) bool {
	if d == Egress {
		return p.EgressEnforced
	}
	return p.IngressEnforced
}

// SortedKeys returns the keys in a stable, readable order.
func (p *EndpointPolicy) SortedKeys() []Key {
	keys := make([]Key, 0, len(p.Entries))
	for k := range p.Entries {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.Direction != b.Direction {
			return a.Direction < b.Direction
		}
		if a.Identity != b.Identity {
			return a.Identity < b.Identity
		}
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		if a.AnyPort != b.AnyPort {
			return a.AnyPort
		}
		if a.PortLo != b.PortLo {
			return a.PortLo < b.PortLo
		}
		return a.PortHi < b.PortHi
	})
	return keys
}

func (k Key) String() string {
	id := "any"
	if k.Identity != 0 {
		id = fmt.Sprint(uint32(k.Identity))
	}
	proto := "any"
	switch k.Protocol {
	case ProtoAny:
	case ProtoTCP:
		proto = "TCP"
	case ProtoUDP:
		proto = "UDP"
	case ProtoSCTP:
		proto = "SCTP"
	case ProtoICMP:
		proto = "ICMP"
	case ProtoICMPv6:
		proto = "ICMPv6"
	default:
		proto = fmt.Sprint(k.Protocol)
	}
	port := "any"
	if k.Protocol != ProtoAny && !k.AnyPort {
		port = fmt.Sprint(k.PortLo)
		if k.PortHi > k.PortLo {
			port = fmt.Sprintf("%d-%d", k.PortLo, k.PortHi)
		}
	}
	return fmt.Sprintf("%s identity=%s proto=%s port=%s", k.Direction, id, proto, port)
}
