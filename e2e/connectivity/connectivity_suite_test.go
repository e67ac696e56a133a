//go:build e2e

// The connectivity suite, modelled on `cilium connectivity test`, runs the
// scenario library's connectivity files on a live cluster: each file is one
// spec, and every probe in it a real connection.
package connectivity_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kestrelnet/kestrel/e2e/framework"
	"github.com/kestrelnet/kestrel/scenarios/engine"
)

func TestConnectivity(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "connectivity")
}

var (
	cluster framework.Cluster
	runner  engine.Runner
)

var _ = BeforeSuite(func(ctx SpecContext) {
	cluster = framework.SetUpCluster(ctx, 2)
	var err error
	runner, err = cluster.Runner()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { framework.CloseRunner(runner) })
}, NodeTimeout(framework.UpTimeout))
