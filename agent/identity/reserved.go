// Package identity turns security-relevant label sets into numeric identities,
// the way Cilium does: reserved identities for well-known entities, cluster-wide
// identities for pods, and node-local identities for CIDR prefixes.
package identity

import "net/netip"

// NumericIdentity is the 32-bit security identity the datapath matches on.
type NumericIdentity uint32

// Reserved identities. The numbers match Cilium's so that flows read the same.
const (
	Unknown       NumericIdentity = 0
	Host          NumericIdentity = 1
	World         NumericIdentity = 2
	Unmanaged     NumericIdentity = 3
	Health        NumericIdentity = 4
	Init          NumericIdentity = 5
	RemoteNode    NumericIdentity = 6
	KubeAPIServer NumericIdentity = 7
	Ingress       NumericIdentity = 8
	WorldIPv4     NumericIdentity = 9
	WorldIPv6     NumericIdentity = 10
)

const (
	// MinClusterIdentity is the first identity handed out to a pod label set.
	MinClusterIdentity NumericIdentity = 256
	// LocalIdentityFlag marks node-local identities (CIDR prefixes), as in Cilium.
	LocalIdentityFlag NumericIdentity = 1 << 24
)

var reservedNames = map[NumericIdentity]string{
	Unknown:       "unknown",
	Host:          "host",
	World:         "world",
	Unmanaged:     "unmanaged",
	Health:        "health",
	Init:          "init",
	RemoteNode:    "remote-node",
	KubeAPIServer: "kube-apiserver",
	Ingress:       "ingress",
	WorldIPv4:     "world-ipv4",
	WorldIPv6:     "world-ipv6",
}

// WorldOf is the world identity of an address's family: world-ipv4 (9) or
// world-ipv6 (10), as Cilium gives addresses outside the cluster in
// dual-stack mode. World (2) is both; no address is given it, so only a
// policy that selects both families (the world entity, or 0.0.0.0/0 and ::/0
// together) selects it, as in Cilium.
func WorldOf(a netip.Addr) NumericIdentity {
	if a.Unmap().Is4() {
		return WorldIPv4
	}
	return WorldIPv6
}

// ReservedName returns the entity name of a reserved identity ("" if id is not reserved).
func ReservedName(id NumericIdentity) string { return reservedNames[id] }

// IsReserved reports whether id is one of the fixed, well-known identities.
func (id NumericIdentity) IsReserved() bool { return id > 0 && id < MinClusterIdentity }

// IsLocal reports whether id is a node-local (CIDR) identity.
func (id NumericIdentity) IsLocal() bool { return id&LocalIdentityFlag != 0 }
