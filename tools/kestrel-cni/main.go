// Command kestrel-cni is Kestrel's CNI plugin. The container runtime runs it
// with the CNI environment and config on stdin; agent/cni holds the logic.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"

	"github.com/kestrelnet/kestrel/agent/cni"
)

func main() {
	skel.PluginMainFuncs(cni.Funcs(), cni.Versions, cni.About)
}
