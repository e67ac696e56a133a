// Package cluster brings a whole sim cluster up and down: the underlay and
// node namespaces (sim/network), the control plane (sim/controlplane), and per
// node a kestrel-agent and a kubelet, plus one scheduler, all as detached
// processes recorded in the state dir (sim/README.md is the contract).
package cluster
