// Package cni is the logic of kestrel-cni, the CNI plugin that wires a pod
// into a Kestrel node: a veth pair between the node and pod netns, an
// address from the node's pod CIDR, and the endpoint registered with the
// local kestrel-agent, which owns the datapath. The plugin binary
// (tools/kestrel-cni) is only Funcs handed to skel.
//
// The plugin is run by the container runtime (in the sim: the kubelet,
// through libcni) from inside the node netns; the host veth is made in
// the plugin's own netns, so that is where it must run.
package cni

import (
	"context"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
)

// Versions are the CNI spec versions the plugin speaks. 1.1.0 brings
// STATUS; 0.4.0 is kept for runtimes that still send it.
var Versions = version.PluginSupports("0.4.0", "1.0.0", "1.1.0")

// About is what the binary prints when run without CNI_COMMAND.
const About = "kestrel-cni: connects pods to the Kestrel datapath"

// Funcs are the CNI verbs for skel.PluginMainFuncs.
func Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: Add, Del: Del, Check: Check, Status: Status}
}

// errPluginNotAvailable is CNI's well-known code 50: STATUS answers it while
// the agent is down, so the runtime holds pod creation instead of failing
// each ADD.
const errPluginNotAvailable uint = 50

// Each call to the agent is bounded so a wedged agent fails the ADD (which
// the runtime retries) rather than hanging it past the runtime's own timeout.
const (
	agentPutTimeout    = 60 * time.Second
	agentDeleteTimeout = 10 * time.Second
	agentHealthTimeout = 5 * time.Second
)

func withTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
