//go:build e2e

// The dsr suite runs a cluster whose agents send NodePort flows to backends
// on other nodes by direct server return (--bpf-lb-mode dsr): the backend
// sees the client's own address and answers it directly.
package dsr_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kestrelnet/kestrel/e2e/framework"
)

func TestDSR(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "dsr")
}

var cluster framework.Cluster

var _ = BeforeSuite(func(ctx SpecContext) {
	cluster = framework.SetUpCluster(ctx, 2, framework.WithLBMode("dsr"))
}, NodeTimeout(framework.UpTimeout))
