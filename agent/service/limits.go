package service

// Default capacities of the datapath maps the State is written to; Build
// enforces the first two (Config.FrontendCapacity, Config.BackendCapacity).
// They are sized so that 100k services fit: a service port is one frontend
// per ClusterIP family plus one per externalIP, ingress IP and (for a
// NodePort) node address, and a backend is one distinct address, port and
// protocol. So 2^19 frontends hold 100k dual-stack services of two ports
// (400k), and 2^19 backends 100k dual-stack services with two endpoints per
// family (400k); NodePort services are few by construction (the node-port
// range holds 2768 by default). With IPv6-sized keys and the kernel's
// per-element header each map is roughly 45 MiB if preallocated.
const (
	// DefaultFrontendCapacity is the number of {address, port, protocol}
	// entries the service map holds (Cilium's lb4_services + lb6_services
	// master entries).
	DefaultFrontendCapacity = 1 << 19
	// DefaultBackendCapacity is the number of distinct {address, port,
	// protocol} backends (Cilium's lb4_backends + lb6_backends).
	DefaultBackendCapacity = 1 << 19
	// DefaultMaglevTableSize is the Maglev lookup table's length M, a prime
	// (Cilium's default, --bpf-lb-maglev-table-size). A table costs M*4
	// bytes; Maglev is per service, opt-in, so its tables are counted apart.
	DefaultMaglevTableSize = 16381
	// DefaultMaglevTableCapacity is how many Maglev tables (one per service
	// port and family that asks for Maglev) the outer map holds: 4096 tables
	// of M=16381 are 256 MiB, the most a node should spend on them by
	// default. Build does not count them: whether a service uses Maglev is
	// a datapath setting, so the datapath writer enforces this one.
	DefaultMaglevTableCapacity = 4096
)
