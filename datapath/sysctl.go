package datapath

// SysctlDir is where the agent writes the node's sysctls: /proc/sys, or, in a
// container whose /proc/sys the runtime mounts read-only (an unprivileged
// DaemonSet pod), the node's /proc/sys/net mounted elsewhere (kestrel-agent
// --proc-sys-dir). The network ones apply to the writer's network namespace,
// the node's for a host-network pod.
var SysctlDir = "/proc/sys"
