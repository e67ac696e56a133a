// Package format holds the kestrel.dev/v1alpha1 Scenario types and their strict
// parser. The semantics are in scenarios/README.md and docs SCENARIOS.md.
package format

import (
	"fmt"
	"strconv"

	"github.com/kestrelnet/kestrel/agent/yamldoc"
)

// APIVersion and Kind identify a scenario document.
const (
	APIVersion = "kestrel.dev/v1alpha1"
	Kind       = "Scenario"
)

// Scenario is one parsed scenario file.
type Scenario struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	Spec       Spec     `yaml:"spec"`

	// File is the path the scenario was read from.
	File string `yaml:"-"`

	doc *yamldoc.Doc // positions of the fields, for errors found after parsing
}

func (s *Scenario) includeLine(i int) int {
	if s.doc == nil {
		return 1
	}
	return s.doc.Line(fmt.Sprintf("spec.include[%d]", i))
}

// Metadata names the scenario.
type Metadata struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

// Spec is everything a scenario declares.
type Spec struct {
	Description     string                       `yaml:"description"`
	Modes           []string                     `yaml:"modes"`
	Nodes           []string                     `yaml:"nodes"`
	IPFamilies      []string                     `yaml:"ipFamilies"`
	Pods            []Pod                        `yaml:"pods"`
	NamespaceLabels map[string]map[string]string `yaml:"namespaceLabels"`
	Objects         []Object                     `yaml:"objects"`
	Include         []string                     `yaml:"include"`
	Steps           []Step                       `yaml:"steps"`
	Probes          []Probe                      `yaml:"probes"`
	Reachability    Reachabilities               `yaml:"reachability"`
	World           []WorldServer                `yaml:"world"`
	DNS             *ClusterDNS                  `yaml:"dns"`
}

// WorldServer is a server outside the cluster: HTTP on 80, TLS with any
// server name on 443, the line echo elsewhere (scenarios/README.md).
type WorldServer struct {
	IP    string          `yaml:"ip"`
	Ports []ContainerPort `yaml:"ports"`
	Line  int             `yaml:"-"`
}

// Pod is the pod shorthand: it expands to a Namespace and a Pod.
type Pod struct {
	Name   string            `yaml:"name"` // namespace/name
	Labels map[string]string `yaml:"labels"`
	Node   string            `yaml:"node"`
	Ports  []ContainerPort   `yaml:"ports"`
	IP     string            `yaml:"ip"`
	IPs    []string          `yaml:"ips"`
	// Server is what its HTTP ports answer as: json-mock (the echo server
	// of `cilium connectivity test`), or the echo (default).
	Server string `yaml:"server"`
	Line   int    `yaml:"-"`
}

// ContainerPort is "PORT/PROTO" or {name, port, protocol}.
type ContainerPort struct {
	Name     string `yaml:"name"`
	Port     uint16 `yaml:"port"`
	Protocol string `yaml:"protocol"`

	bad string // a scalar that is not PORT/PROTO, for validation to refuse
}

// Object is one inline Kubernetes or Cilium object, kept as JSON.
type Object struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	Source     string // file:line
	JSON       []byte
	Labels     map[string]string
}

// Step changes the cluster, then runs its probes in order.
type Step struct {
	Apply        []ObjectRef    `yaml:"apply"`
	Delete       []string       `yaml:"delete"`
	SetLabels    []SetLabels    `yaml:"setLabels"`
	Probes       []Probe        `yaml:"probes"`
	Reachability Reachabilities `yaml:"reachability"`
	Line         int            `yaml:"-"`
}

// ObjectRef is an object's name in a step's apply list, or an inline object.
type ObjectRef struct {
	Name   string
	Inline *Object
	Line   int
}

// SetLabels replaces the labels of one pod or namespace.
type SetLabels struct {
	Pod       string            `yaml:"pod"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
	Line      int               `yaml:"-"`
}

// Probe is one check between two peers.
type Probe struct {
	Name       string    `yaml:"name"`
	Modes      []string  `yaml:"modes"`
	From       Peer      `yaml:"from"`
	To         Peer      `yaml:"to"`
	Protocol   string    `yaml:"protocol"`
	Port       PortRef   `yaml:"port"`
	SourcePort uint16    `yaml:"sourcePort"`
	Family     string    `yaml:"family"`
	Exchange   string    `yaml:"exchange"`
	Packet     *Packet   `yaml:"packet"`
	HTTP       *HTTP     `yaml:"http"`
	GRPC       *GRPC     `yaml:"grpc"`
	DNS        *DNSQuery `yaml:"dns"`
	TLS        *TLS      `yaml:"tls"`
	Kafka      *Kafka    `yaml:"kafka"`
	Expect     Expect    `yaml:"expect"`
	Line       int       `yaml:"-"`
}

// Peer is one end of a probe: a pod ("ns/name") or exactly one of the other fields.
type Peer struct {
	Pod     string  `yaml:"-"`
	IP      string  `yaml:"ip"`
	Node    string  `yaml:"node"`
	CIDR    string  `yaml:"cidr"`
	Service string  `yaml:"service"`
	Port    PortRef `yaml:"port"` // with service: the service port
	FQDN    string  `yaml:"fqdn"`
	Via     string  `yaml:"via"` // with ip, as a source: the node it enters the cluster at
	Line    int     `yaml:"-"`

	bad string // why the peer's shape is wrong, for validation
}

// PortRef is a port number or a port name.
type PortRef struct {
	Number uint16
	Name   string

	bad string // a value that is neither, for validation to refuse
}

// IsZero reports whether no port was given.
func (p PortRef) IsZero() bool { return p.Number == 0 && p.Name == "" }

// Packet is the exact frame of an `exchange: packet` probe.
type Packet struct {
	Flags    []string `yaml:"flags"`
	ICMPType *uint8   `yaml:"icmpType"`
}

// HTTP is the request of an `exchange: request` probe.
type HTTP struct {
	Method  string            `yaml:"method"`
	Path    string            `yaml:"path"`
	Headers map[string]string `yaml:"headers"`
}

// GRPC is a unary gRPC call of an `exchange: request` probe: a POST of
// /<service>/<method> over cleartext HTTP/2.
type GRPC struct {
	Service string `yaml:"service"` // package.Service
	Method  string `yaml:"method"`
}

// TLS is a TLS handshake of an `exchange: request` probe: a ClientHello
// naming ServerName (SNI), then the http request inside if one is given.
type TLS struct {
	ServerName string `yaml:"serverName"`
}

// Kafka is one Kafka request of an `exchange: request` probe: apiKey
// (default produce) naming topic, sent with clientID.
type Kafka struct {
	APIKey   string `yaml:"apiKey"`
	Topic    string `yaml:"topic"`
	ClientID string `yaml:"clientID"`
}

// Expect is what must be observed.
type Expect struct {
	Verdict  string      `yaml:"verdict"`
	Reason   string      `yaml:"reason"`
	Backend  Backends    `yaml:"backend"`
	SourceIP *SourceIP   `yaml:"sourceIP"`
	Flow     *FlowExpect `yaml:"flow"`
	// Status is the server's own HTTP status, with exchange: request.
	Status int `yaml:"status"`
	// Answer is the addresses a dns request must be answered.
	Answer []string `yaml:"answer"`
}

// SourceIP is the client address the server must have seen: an address, or
// {node: N} for that node's address of the probe's family (a source NAT).
type SourceIP struct {
	IP   string `yaml:"-"`
	Node string `yaml:"node"`

	bad string // a value that is neither, for validation to refuse
}

// Backends are the pods ("ns/name") a service probe may be translated to:
// one pod, or a list of which any one will do.
type Backends struct {
	Pods []string

	bad string // a value that is neither, for validation to refuse
}

// FlowExpect is the part of the emitted flow event that is checked.
type FlowExpect struct {
	Policy    string `yaml:"policy"`
	Direction string `yaml:"direction"`
	MatchType string `yaml:"matchType"`
}

// Reachability is a truth table of pod-to-pod probes.
type Reachability struct {
	Port           PortRef  `yaml:"port"`
	Protocol       string   `yaml:"protocol"`
	Pods           []string `yaml:"pods"`
	IgnoreLoopback bool     `yaml:"ignoreLoopback"`
	Reason         string   `yaml:"reason"`
	Modes          []string `yaml:"modes"`
	Expect         string   `yaml:"expect"`
	Line           int      `yaml:"-"`

	// Table is Expect parsed: Table[from][to] is true for connected.
	Header []string                   `yaml:"-"`
	Rows   []string                   `yaml:"-"`
	Table  map[string]map[string]bool `yaml:"-"`
}

// Reachabilities is one reachability mapping or a list of them.
type Reachabilities []Reachability

// String is the number or the name.
func (p PortRef) String() string {
	if p.Name != "" {
		return p.Name
	}
	return strconv.Itoa(int(p.Number))
}
