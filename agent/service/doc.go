// Package service turns Kubernetes Services and EndpointSlices into the
// load-balancing state one node needs: frontends (address, port, protocol)
// with the backends each one may use, and what to do when there are none.
//
// The semantics are kube-proxy's (nftables mode where its modes differ): which
// endpoints are usable (ready first, serving-terminating as the fallback,
// non-serving never), the internal and external traffic policies, topology
// hints, REJECT for a service with no usable endpoints and DROP for a Local
// policy with no local endpoint, REJECT for a wrong port on an allocated
// ClusterIP and DROP for an unallocated address in the service range.
//
// Build is pure: the same input gives the same State, byte for byte, so the
// caller can diff two States and write only what changed. A service whose
// input is bad (a frontend or nodePort another service already holds, an
// unparseable address, maps full) is left out whole and named in
// State.Status; nothing of it reaches the State. A Cache passed in the
// Input makes a Build after a small change cost about that change, with the
// same State, and Cache.Delta names the frontends that changed.
//
// Nothing here touches the datapath: the package is not yet wired to it.
package service
