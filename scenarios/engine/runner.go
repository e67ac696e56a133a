package engine

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Manifest is one non-pod, non-namespace object of a scenario (a policy, a
// service, ...), kept as JSON so each runner hands it to the code that owns the
// kind. Source is "file:line" of the object in the scenario, for error messages.
type Manifest struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	Source     string
	JSON       []byte
}

// Cluster is the complete desired state at one step of a scenario.
type Cluster struct {
	Nodes      []string
	NodeIPs    map[string][]netip.Addr   // each node's addresses (host peers)
	PodCIDRs   map[string][]netip.Prefix // each node's pod CIDRs
	Namespaces []*corev1.Namespace
	Pods       []*corev1.Pod // Status.PodIPs and Spec.NodeName are always filled in
	Manifests  []Manifest
	World      []WorldServer // servers outside the cluster (spec.world)
	DNS        *ClusterDNS   // the cluster DNS (spec.dns), nil when not given
}

// WorldServer is a server outside the cluster at IP: HTTP on port 80, TLS
// (any server name) on 443, the line echo on other TCP ports and on UDP.
type WorldServer struct {
	IP    netip.Addr
	Ports []WorldPort
}

// WorldPort is one port of a world server.
type WorldPort struct {
	Port     uint16
	Protocol string // TCP | UDP | SCTP
}

// Serves reports whether the world server at a serves port/proto.
func (c *Cluster) Serves(a netip.Addr, port uint16, proto string) bool {
	for _, w := range c.World {
		if w.IP != a {
			continue
		}
		for _, p := range w.Ports {
			if p.Port == port && strings.EqualFold(p.Protocol, proto) {
				return true
			}
		}
	}
	return false
}

// Peer is one end of a probe, already resolved against the cluster.
type Peer struct {
	Pod  *corev1.Pod // set when the peer is a pod
	IP   netip.Addr  // always set: the pod's IP of the probe's family, or the literal IP
	Node string      // set when the peer is a node (host)
	// Service is "namespace/name" when the peer is a service's cluster IP (IP).
	Service string
	// FQDN is set when the peer was named by DNS name; IP is what it resolves to.
	FQDN string
	// Via is the node a world source (IP only) enters the cluster at.
	Via string
	// Frontend is "namespace/name" when the peer is a node address and port
	// or an address that is a NodePort, LoadBalancer ingress IP or external
	// IP of that Service (Service is empty then).
	Frontend string
}

// Probe is one concrete check: a single packet or an exchange between two peers.
type Probe struct {
	Scenario string
	Name     string
	From     Peer
	To       Peer
	Protocol string // TCP | UDP | SCTP | ICMP | ICMPv6
	Port     uint16 // resolved: named ports are already numbers
	// SrcPort is the source port (the echo identifier for ICMP); 0 lets the
	// runner choose. Scenarios set it when a later packet must match this one's
	// connection (conntrack).
	SrcPort uint16
	// ICMPType is the ICMP type to send (ICMP and ICMPv6 only): echo request
	// (8, or 128 for ICMPv6) unless the scenario says otherwise.
	ICMPType uint8
	Exchange string // connect | packet | request
	Flags    []string
	HTTP     *HTTPRequest  // with exchange request
	TLS      *TLSRequest   // with exchange request: a handshake (then HTTP inside, if set)
	Kafka    *KafkaRequest // with exchange request
	DNS      *DNSRequest   // with exchange request: a query to To
	// Resolver is the cluster DNS server pod (the probe's family) that a
	// probe to an FQDN resolves its name through first; nil otherwise.
	Resolver *Peer
	Expect   Expectation
	// Independent probes (the cells of a reachability matrix) share no state
	// with each other, so a runner may run them at the same time.
	Independent bool
}

// HTTPRequest is the L7 request of an `exchange: request` probe.
type HTTPRequest struct {
	Method  string
	Path    string
	Headers map[string]string
	// HTTP2 sends it over cleartext HTTP/2 (a gRPC call); the proxy judges
	// it by the same rules.
	HTTP2 bool
}

// TLSRequest is a TLS handshake sending ServerName as its SNI.
type TLSRequest struct {
	ServerName string
}

// Expectation is what the scenario says must be observed.
type Expectation struct {
	Verdict string // allowed | dropped | l7-denied | rejected
	Reason  string // drop reason name, with dropped
	// Backends are the pods ("namespace/pod") a service probe may be
	// translated to; any one of them passes, any other pod fails.
	Backends []string
	// SourceIP, when set, is the client address the server must have seen:
	// IP, or the node's address when Node is set (as Peer resolves a node).
	SourceIP *Peer
	Flow     *FlowExpectation
	Status   int // the server's HTTP status, with exchange request (0: not checked)
	// Answer is the addresses a dns request must be answered (any order).
	Answer []netip.Addr
}

// FlowExpectation is the subset of an emitted flow event the scenario checks.
type FlowExpectation struct {
	Policy    string // name of the policy that decided (matches the end of the origin)
	Direction string // ingress | egress
	MatchType string // l3-only | l3-l4 | l4-only | all | none
}

// Observation is what a runner saw for a probe.
type Observation struct {
	Verdict string // allowed | dropped | ...
	Reason  string // drop reason name when dropped
	Backend string // "namespace/pod" the flow was translated to, if any
	// SourceIP is the client address the server saw, in the scenario's
	// addresses (a live runner maps its node addresses back to the
	// scenario's); invalid when the runner could not tell.
	SourceIP netip.Addr
	Status   int // HTTP status the client got, with exchange request
	// Answer is the addresses a dns request was answered.
	Answer   []netip.Addr
	Flows    []Flow // events emitted for the probe's frames, in order
	Evidence string // free text: hook, return codes, which rule decided
	Err      error  // the probe could not be run at all (counts as a failure)
	// Skipped, when set, says why this runner cannot run the probe on this
	// machine (e.g. the kernel has no SCTP); the probe counts as skipped.
	Skipped string
	// EventsUnobserved says the runner sees no datapath events (yet), so drop
	// reasons and flow expectations cannot be checked; the report counts them
	// instead of passing them silently.
	EventsUnobserved bool
}

// Flow is one emitted datapath event, in runner-independent form.
type Flow struct {
	Direction string
	Verdict   string
	Reason    string
	MatchType string
	Policies  []string // origins of the deciding policy entry
	SrcID     uint32
	DstID     uint32
}

// Runner executes scenarios in one mode (unit, sim, kind, cluster).
type Runner interface {
	Mode() string
	// Begin starts a scenario; the session lives until Close.
	Begin(ctx context.Context, scenario string) (Session, error)
}

// BatchSession is a Session that can run independent probes concurrently
// (live modes, where a dropped probe costs a timeout).
type BatchSession interface {
	Session
	ProbeBatch(ctx context.Context, ps []Probe) []Observation
}

// Session is one scenario's life in a runner.
type Session interface {
	// Sync makes the runner's state equal to c (the whole desired state, not a delta).
	// An error means the state was rejected and nothing of it was applied.
	Sync(ctx context.Context, c *Cluster) error
	Probe(ctx context.Context, p Probe) Observation
	Close() error
}

// Wire is the request as every runner sends it (unit mode hands the same
// bytes to the proxy's parser): HTTP/1.1, Host the original destination
// unless the probe's headers name one, no body.
func (h *HTTPRequest) Wire(to netip.AddrPort) []byte {
	host := to.String()
	keys := make([]string, 0, len(h.Headers))
	for k, v := range h.Headers {
		if strings.EqualFold(k, "Host") {
			host = v
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", h.Method, h.Path, host)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\r\n", k, h.Headers[k])
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return []byte(b.String())
}

// Header is the value of the request's header name (case-insensitive), or "".
func (h *HTTPRequest) Header(name string) string {
	for k, v := range h.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
