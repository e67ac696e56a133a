//go:build e2e

// The faults suite breaks things on a live cluster: workloads that exit,
// agents killed with SIGKILL while connections are open.
package faults_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kestrelnet/kestrel/e2e/framework"
)

func TestFaults(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "faults")
}

var cluster framework.Cluster

var _ = BeforeSuite(func(ctx SpecContext) {
	cluster = framework.SetUpCluster(ctx, 2)
}, NodeTimeout(framework.UpTimeout))
