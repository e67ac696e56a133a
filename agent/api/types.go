// Package api is the agent's local API: the CNI plugin registers and removes
// endpoints through it, and tools read the agent's status. It is HTTP with JSON
// bodies over a unix socket, so only local root can reach it.
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
	// PolicyRevision is the highest Kubernetes resourceVersion whose effect
	// is in the datapath: a writer that got resourceVersion R back knows its
	// change is enforced on this node once PolicyRevision >= R.
	PolicyRevision uint64 `json:"policyRevision"`
	// PolicyErrors names the policies this agent ignores and why.
	PolicyErrors []string `json:"policyErrors,omitempty"`
	// LastError is the last regeneration's failure, empty once one succeeds.
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

// Paths of the API.
const (
	PathEndpoints = "/v1/endpoints/" // + containerID: PUT registers, DELETE removes
	PathStatus    = "/v1/status"
	PathHealthz   = "/v1/healthz"
)

// Error is the body of every non-2xx answer.
type Error struct {
	Message string `json:"message"`
}
