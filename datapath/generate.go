// Package datapath is the Go side of bpf/: the generated bindings, loading,
// typed map access, attaching to devices and running programs on test frames.
// It knows nothing of Kubernetes: callers hand it identities, endpoints and
// policy entries.
package datapath

// BPF2GO_CC and BPF2GO_CFLAGS come from the Makefile (`make generate`).
//go:generate go tool bpf2go -target bpfel -type flow_event -type drop_reason -type verdict -type match_type -type ct_status -type traffic_direction -type policy_key -type policy_entry -type policy_action -type policy_prefix -type endpoint_flags -type ipcache_key -type ipcache_entry -type endpoint_info -type monitor_aggregation -type ct_key -type ct_entry -type metrics_value -type lb_flags -type lb_key -type lb_service -type lb_backend_key -type lb_addr -type lb_flow_key -type lb_flow -type lb_affinity_key -type lb_affinity_entry -type lb_scope -type lb_source_range_key -type observation_point -type endpoint_addr_key -type nat_key -type nat_entry -type nat_dir -type nat_flags -type proxy_mark lxc ../bpf/lxc.c -- -I../bpf/lib
// The benchmark object includes lxc.c; its maps are lxc's (LoadBench shares
// them), so only its own cursor type is generated.
//go:generate go tool bpf2go -target bpfel -no-global-types -type bench_state lxcbench ../bpf/bench.c -- -I../bpf/lib
// The socket programs (socket-level load balancing) run over lxc's service
// maps (LoadSocketLB shares them), so only their own types are generated.
//go:generate go tool bpf2go -target bpfel -no-global-types -type sock_revnat_key -type sock_revnat_entry sock ../bpf/sock.c -- -I../bpf/lib
