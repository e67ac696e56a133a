//go:build tools

// Package kindcoredns pins CoreDNS at the version kubeadm v1.31 deploys (v1.11.3).
// Its own module so CoreDNS's dependency graph stays out of Kestrel's;
// kind/build-bins.sh builds the coredns command from it.
package kindcoredns

import (
	_ "github.com/coredns/coredns"
)
