//go:build tools

// Package kindknp pins sigs.k8s.io/kube-network-policies, the second, independent
// NetworkPolicy implementation `make certify-knp` runs the NetworkPolicy e2e suite
// against (kind/README.md). Its own module so its dependency graph stays out of
// Kestrel's; kind/build-bins.sh builds its command (./cmd, "netpol") from it.
package kindknp

import (
	_ "sigs.k8s.io/kube-network-policies/cmd"
)
