package service

import (
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Kind says how a frontend is reached.
type Kind uint8

const (
	ClusterIP Kind = iota + 1
	ExternalIP
	LoadBalancer
	NodePort
	HostPort
)

func (k Kind) String() string {
	switch k {
	case ClusterIP:
		return "ClusterIP"
	case ExternalIP:
		return "ExternalIP"
	case LoadBalancer:
		return "LoadBalancer"
	case NodePort:
		return "NodePort"
	case HostPort:
		return "HostPort"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// External reports whether the kind is "external" in kube-proxy's sense:
// subject to externalTrafficPolicy rather than internalTrafficPolicy.
func (k Kind) External() bool { return k == ExternalIP || k == LoadBalancer || k == NodePort }

// Action is what the datapath does with a new connection to a frontend.
type Action uint8

const (
	// Forward picks one of Backends.
	Forward Action = iota + 1
	// Reject answers with ICMP port unreachable (TCP RST for TCP), as
	// kube-proxy's reject-chain: the service has no usable endpoint anywhere.
	Reject
	// Drop discards silently, as kube-proxy's "drop" verdict: a Local
	// traffic policy with endpoints elsewhere but none on this node.
	Drop
)

func (a Action) String() string {
	switch a {
	case Forward:
		return "forward"
	case Reject:
		return "reject"
	case Drop:
		return "drop"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// Backend is one endpoint address and port a frontend may translate to.
type Backend struct {
	Addr     netip.Addr
	Port     uint16
	NodeName string
	// Local is true when the endpoint runs on this node.
	Local bool
	// Terminating is true when the backend is in use only as the
	// serving-terminating fallback (no ready endpoint was available).
	Terminating bool
}

func (b Backend) String() string { return netip.AddrPortFrom(b.Addr, b.Port).String() }

// ServicePortName names the Service port a frontend belongs to.
type ServicePortName struct {
	types.NamespacedName
	Port     string
	Protocol corev1.Protocol
}

func (n ServicePortName) String() string {
	return fmt.Sprintf("%s:%s/%s", n.NamespacedName, n.Port, n.Protocol)
}

// Frontend is one {address, port, protocol} the datapath translates.
type Frontend struct {
	Addr     netip.Addr
	Port     uint16
	Protocol corev1.Protocol
	Kind     Kind
	// Service and port the frontend comes from; for a HostPort the pod's
	// namespace and name and the container port's name.
	Service ServicePortName

	// Action and Backends apply to every new connection, except that for an
	// external frontend under externalTrafficPolicy Local they apply only to
	// traffic from outside the node (see LocalOriginBackends).
	Action   Action
	Backends []Backend
	// LocalOriginBackends is set for external frontends under
	// externalTrafficPolicy Local: traffic that starts on this node (from its
	// pods or the host itself) is not subject to the policy and goes to the
	// cluster-wide endpoints, as kube-proxy's "short-circuit" rules send it
	// (it stands in for going out to the load balancer and coming back). It
	// is set even when Action is Drop, so pods keep reaching the service.
	LocalOriginBackends []Backend

	// ExternalPolicyLocal and InternalPolicyLocal are the service's traffic
	// policies as kube-proxy reads them (externalTrafficPolicy counts only
	// for services reachable from outside).
	ExternalPolicyLocal bool
	InternalPolicyLocal bool
	// AffinityTimeout is non-zero for sessionAffinity ClientIP: a client
	// address keeps its backend for this long after its last new connection.
	AffinityTimeout time.Duration
	// SourceRanges, for LoadBalancer frontends of a service with
	// loadBalancerSourceRanges: new connections from other sources are
	// dropped, before any endpoint check. As in kube-proxy, the ingress IPs
	// themselves are added when a range holds a node address (hairpin
	// through a VIP bound on the node), and NodePorts are never filtered.
	SourceRanges []netip.Prefix
}

// Key is the frontend's lookup key.
func (f Frontend) Key() FrontendKey { return FrontendKey{f.Addr, f.Port, f.Protocol} }

// FrontendKey is what the datapath looks a frontend up by.
type FrontendKey struct {
	Addr     netip.Addr
	Port     uint16
	Protocol corev1.Protocol
}

func (k FrontendKey) String() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(k.Addr, k.Port), k.Protocol)
}

// HealthCheck is a healthCheckNodePort the node serves (kube-proxy's service
// health server): HTTP 200 while the service has a ready local endpoint,
// 503 otherwise.
type HealthCheck struct {
	Service        types.NamespacedName
	Port           uint16
	LocalEndpoints int
}

// Status is a service (or pod, for hostPorts) left out of the State, and why.
type Status struct {
	// Object is "Service ns/name" or "Pod ns/name".
	Object string
	Error  string
}

// State is one node's load-balancing state.
type State struct {
	// Frontends sorted by address, port, protocol, then kind.
	Frontends []Frontend
	// ClusterIPs are every allocated ClusterIP: a new connection to one of
	// them that matches no frontend (wrong port or protocol) is rejected.
	ClusterIPs []netip.Addr
	// ServiceCIDRs are the cluster's service ranges: a new connection to an
	// address inside them that is no ClusterIP is dropped.
	ServiceCIDRs []netip.Prefix
	// HealthChecks are the healthCheckNodePorts to serve, by port.
	HealthChecks []HealthCheck
	// Status lists what was left out, sorted by object.
	Status []Status
	// Backends counts the distinct {address, port, protocol} backends.
	Backends int
}
