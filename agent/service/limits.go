package service

// Default capacities of the datapath maps the State is written to. They are
// sized so that 100k services fit: a ClusterIP service is one frontend per
// family, a NodePort or LoadBalancer service adds one per node address and
// ingress IP, so 100k dual-stack services with a few ports need well under
// 2^18 frontends; backends are counted once per distinct address, port and
// protocol, and 2^19 leaves room for five per service.
const (
	// DefaultFrontendCapacity is the number of {address, port, protocol}
	// entries the service map holds (Cilium's lb4_services + lb6_services
	// master entries).
	DefaultFrontendCapacity = 1 << 18
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
	// default.
	DefaultMaglevTableCapacity = 4096
)
