// Package api is the agent's local API: the CNI plugin registers and removes
// endpoints through it, and tools read the agent's status. It is HTTP with JSON
// bodies over a unix socket, so only local root can reach it; its GET requests
// may also be served on a loopback TCP address (ListenTCP), which a reader on
// another machine reaches through a port-forward of the agent pod.
package api

// EndpointRequest is what the CNI plugin sends once a pod's interfaces exist.
type EndpointRequest struct {
	ContainerID   string   `json:"containerID"`
	PodNamespace  string   `json:"podNamespace"`
	PodName       string   `json:"podName"`
	Netns         string   `json:"netns"`         // path of the pod's network namespace
	HostInterface string   `json:"hostInterface"` // host-side veth name, in the agent's namespace
	HostIfIndex   int      `json:"hostIfIndex"`
	IPs           []string `json:"ips"` // the pod's addresses, without prefix length
	// MAC is the pod-side interface's address: the datapath drops frames
	// from the pod with any other source MAC.
	MAC string `json:"mac"`
}

// EndpointResponse confirms an endpoint is in the datapath with its policy.
type EndpointResponse struct {
	ID       uint32 `json:"id"`
	Identity uint32 `json:"identity"`
}

// Status is the agent's view, for tools and the sim runner.
type Status struct {
	Node      string           `json:"node"`
	Endpoints []EndpointStatus `json:"endpoints"`
	// PolicyRevision is a Kubernetes resourceVersion up to which every
	// change to pods, namespaces and policies is in the datapath. It is the
	// lowest of those watch streams' latest versions, because streams are
	// not ordered with respect to each other: a writer that got version R
	// back knows its change is enforced once PolicyRevision >= R, and only
	// a later write in each stream moves every stream past R (the sim
	// runner's markers do that).
	PolicyRevision uint64 `json:"policyRevision"`
	// Revisions is, per watched resource ("pods", "networkpolicies", ...),
	// the highest resourceVersion of that resource whose effect is in the
	// datapath.
	Revisions map[string]uint64 `json:"revisions"`
	// PolicyErrors names the policies this agent ignores and why.
	PolicyErrors []string `json:"policyErrors,omitempty"`
	// PolicyWarnings names the parts of policies in force that Kestrel
	// does not enforce as written, and what happens instead (policy.Warnings:
	// e.g. l7proto ports drop as PROXY_UNAVAILABLE).
	PolicyWarnings []string `json:"policyWarnings,omitempty"`
	// LastError is the last regeneration's failure, empty once one succeeds.
	LastError string `json:"lastError,omitempty"`
	// Datapath has the datapath's own figures.
	Datapath *DatapathStatus `json:"datapath,omitempty"`
	// SocketLBCgroup is the cgroup v2 directory the socket-level load
	// balancer is attached to (--bpf-lb-sock); empty when it is off.
	SocketLBCgroup string `json:"socketLBCgroup,omitempty"`
}

// DatapathStatus reports the loaded datapath.
type DatapathStatus struct {
	// EventsLost counts events the ring buffer could not take: flows the
	// agent never saw.
	EventsLost         uint64           `json:"eventsLost"`
	MonitorAggregation string           `json:"monitorAggregation"`
	Conntrack          []ConntrackTable `json:"conntrack"`
	// ConntrackMemoryBytes is what the conntrack tables hold preallocated.
	ConntrackMemoryBytes uint64      `json:"conntrackMemoryBytes"`
	ConntrackGC          ConntrackGC `json:"conntrackGC"`
	// SocketLBTranslations counts the sockets the socket-level load
	// balancer translated that it still remembers (an LRU map).
	SocketLBTranslations int `json:"socketLBTranslations,omitempty"`
}

// ConntrackTable is one conntrack map's size.
type ConntrackTable struct {
	Name        string `json:"name"`
	MaxEntries  uint32 `json:"maxEntries"`
	MemoryBytes uint64 `json:"memoryBytes"`
}

// ConntrackGC is what the agent's sweeps of expired entries did.
type ConntrackGC struct {
	Runs      uint64 `json:"runs"`
	Removed   uint64 `json:"removed"`
	LastRun   string `json:"lastRun,omitempty"`
	LastError string `json:"lastError,omitempty"`
}

// EndpointStatus is one local endpoint.
type EndpointStatus struct {
	ID              uint32   `json:"id"`
	Pod             string   `json:"pod"` // namespace/name
	Identity        uint32   `json:"identity"`
	IPs             []string `json:"ips"`
	IngressEnforced bool     `json:"ingressEnforced"`
	EgressEnforced  bool     `json:"egressEnforced"`
}

// Flow is one verdict of this node's datapath, as the agent read it from the
// ring buffer, with the names of the policies behind it.
type Flow struct {
	Seq uint64 `json:"seq"` // the agent's count of flows read, from 1
	// TimeNs is when the datapath decided, in CLOCK_MONOTONIC nanoseconds
	// (bpf_ktime_get_ns), comparable with the same clock on this host.
	TimeNs      uint64   `json:"timeNs"`
	Node        string   `json:"node"`
	Src         string   `json:"src"`
	Dst         string   `json:"dst"`
	SrcPort     uint16   `json:"srcPort"`
	DstPort     uint16   `json:"dstPort"` // the ICMP type for ICMP
	Protocol    uint8    `json:"protocol"`
	Direction   string   `json:"direction"` // ingress | egress, as seen by the endpoint
	Verdict     string   `json:"verdict"`   // forwarded | dropped | ...
	Reason      string   `json:"reason,omitempty"`
	MatchType   string   `json:"matchType"`
	CT          string   `json:"ct"`
	EndpointID  uint32   `json:"endpointID"`
	SrcIdentity uint32   `json:"srcIdentity"`
	DstIdentity uint32   `json:"dstIdentity"`
	Policies    []string `json:"policies,omitempty"`
	// L7 is set on an L7 proxy's decision (one per request; ct "l7"): a
	// denied request is verdict dropped, reason POLICY_DENIED.
	L7 *L7Flow `json:"l7,omitempty"`
	// TimeUnixNs is TimeNs on the wall clock, for readers on other hosts
	// and for Hubble, whose flows carry wall-clock times.
	TimeUnixNs int64 `json:"timeUnixNs"`
	TCPFlags   uint8 `json:"tcpFlags,omitempty"`   // the TCP header's flag byte (FIN 0x01 ... CWR 0x80)
	ReasonCode uint8 `json:"reasonCode,omitempty"` // the datapath's number for Reason
	IsReply    bool  `json:"isReply,omitempty"`    // conntrack saw the packet as a reply
	// EnforcedBy names, for a POLICY_DENIED drop (no entry allowed it), the
	// policies that made the endpoint's direction default-deny.
	EnforcedBy []string `json:"enforcedBy,omitempty"`
	SrcPeer    Peer     `json:"source"`
	DstPeer    Peer     `json:"destination"`
}

// Peer is what the agent knew of one side of a flow when it read it: the pod
// owning the address, if any, and the identity's labels.
type Peer struct {
	Namespace string   `json:"namespace,omitempty"`
	Pod       string   `json:"pod,omitempty"`
	Labels    []string `json:"labels,omitempty"` // source:key=value, sorted
	// Workload is the pod's controller, as Kind/name (a ReplicaSet made by a
	// Deployment is named as the Deployment, as Cilium does); empty if none.
	Workload string `json:"workload,omitempty"`
	// Service is the Service (namespace/name) whose frontend or backend the
	// address and port are; empty if none.
	Service string `json:"service,omitempty"`
}

// L7Flow is what an L7 proxy saw of one request.
type L7Flow struct {
	Type      string     `json:"type"` // http, dns, tls, kafka
	HTTP      *HTTPFlow  `json:"http,omitempty"`
	DNS       *DNSFlow   `json:"dns,omitempty"`
	TLS       *TLSFlow   `json:"tls,omitempty"`
	Kafka     *KafkaFlow `json:"kafka,omitempty"`
	LatencyNs uint64     `json:"latencyNs"`
}

// KafkaFlow is one Kafka request the Kafka proxy judged; ErrorCode is the
// authorization error a denied one was answered with.
type KafkaFlow struct {
	APIKey        string   `json:"apiKey"`
	APIVersion    int16    `json:"apiVersion"`
	CorrelationID int32    `json:"correlationId"`
	ClientID      string   `json:"clientID,omitempty"`
	Topics        []string `json:"topics,omitempty"`
	ErrorCode     int16    `json:"errorCode,omitempty"`
}

// TLSFlow is one TLS handshake the server-name proxy judged.
type TLSFlow struct {
	ServerName string `json:"serverName"`       // the ClientHello's SNI, empty when none
	NotTLS     bool   `json:"notTLS,omitempty"` // the client sent no ClientHello
}

// DNSFlow is one DNS query the DNS proxy judged: Rcode is the one the
// client got (REFUSED from the proxy for a denied query), IPs the addresses
// the answer gave (learned for toFQDNs before it was released).
type DNSFlow struct {
	Query  string   `json:"query"`
	QTypes []string `json:"qtypes,omitempty"`
	Rcode  int      `json:"rcode"`
	IPs    []string `json:"ips,omitempty"`
	TTL    uint32   `json:"ttl,omitempty"`
}

// HTTPFlow is one HTTP exchange; Code is the status the client got (403
// from the proxy for a denied request).
type HTTPFlow struct {
	Method   string `json:"method"`
	URL      string `json:"url"`
	Protocol string `json:"protocol"`
	Code     int    `json:"code"`
}

// Flows is an answer of GET /v1/flows?since=N: the flows with Seq > N still
// kept (the oldest go first when the buffer is full), and the Seq to ask
// from next time. Lost counts flows that were dropped before being asked for.
// Instance changes when the agent restarts, and its numbering with it.
type Flows struct {
	Instance string `json:"instance"`
	Flows    []Flow `json:"flows"`
	Next     uint64 `json:"next"`
	Lost     uint64 `json:"lost"`
	// NowNs is the agent's CLOCK_MONOTONIC when it answered: a reader on
	// another host (another clock) places the flows' TimeNs on its own
	// clock by it.
	NowNs uint64 `json:"nowNs,omitempty"`
}

// Paths of the API.
const (
	PathEndpoints = "/v1/endpoints/" // + containerID: PUT registers, DELETE removes
	PathStatus    = "/v1/status"
	PathHealthz   = "/v1/healthz"
	PathFlows     = "/v1/flows" // ?since=N
	PathServices  = "/v1/services"
)

// Error is the body of every non-2xx answer.
type Error struct {
	Message string `json:"message"`
}

// Services is the agent's load-balancing state, one entry per frontend.
type Services struct {
	Services []Service `json:"services"`
	// Errors name the services left out whole, and why.
	Errors []string `json:"errors,omitempty"`
}

// Service is one frontend {address, port, protocol} and where it leads.
type Service struct {
	Frontend        string           `json:"frontend"` // address:port/protocol
	Type            string           `json:"type"`     // ClusterIP, NodePort, LoadBalancer, ExternalIP, HostPort
	Service         string           `json:"service"`  // namespace/name:port/protocol
	Action          string           `json:"action"`   // forward, reject (no usable endpoints) or drop
	Backends        []ServiceBackend `json:"backends"`
	InternalLocal   bool             `json:"internalTrafficPolicyLocal,omitempty"`
	ExternalLocal   bool             `json:"externalTrafficPolicyLocal,omitempty"`
	AffinitySeconds int              `json:"sessionAffinitySeconds,omitempty"`
}

// ServiceBackend is one endpoint of a frontend.
type ServiceBackend struct {
	Address     string `json:"address"`
	Node        string `json:"node,omitempty"`
	Local       bool   `json:"local"`
	Terminating bool   `json:"terminating,omitempty"` // in use only as the serving-terminating fallback
}
