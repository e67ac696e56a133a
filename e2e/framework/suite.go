package framework

import (
	"context"
	"io"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads as prose
	. "github.com/onsi/gomega"    //nolint:revive
)

// UpTimeout bounds bringing a cluster up (a cold sim takes about 6 s).
const UpTimeout = 3 * time.Minute

// SetUpCluster is a suite's BeforeSuite body: the cluster from the
// environment, brought up fresh with n nodes (anything left by an earlier run
// is taken down first) and taken down after the suite unless KESTREL_E2E_KEEP=1.
func SetUpCluster(ctx context.Context, n int, opts ...func(Cluster)) Cluster {
	Expect(os.Geteuid()).To(Equal(0), "the e2e suites make network namespaces and load BPF programs: run them as root")
	c, err := FromEnv()
	Expect(err).NotTo(HaveOccurred())
	for _, o := range opts {
		o(c)
	}
	Expect(c.Down(ctx)).To(Succeed(), "taking down what an earlier run left")
	By("bringing up " + c.Provider() + " cluster " + c.Name())
	Expect(c.Up(ctx, n)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) {
		if Keep() {
			GinkgoWriter.Printf("KESTREL_E2E_KEEP=1: cluster %s stays up (kubeconfig %s)\n", c.Name(), c.Kubeconfig())
			return
		}
		Expect(c.Down(ctx)).To(Succeed())
	}, NodeTimeout(time.Minute))
	return c
}

// WithLBMode brings the cluster up with its agents in this --bpf-lb-mode.
func WithLBMode(mode string) func(Cluster) {
	return func(c Cluster) {
		s, ok := c.(*Sim)
		Expect(ok).To(BeTrue(), "only sim clusters take a load-balancing mode")
		s.LBMode = mode
	}
}

// CloseRunner closes a scenario runner that holds cluster objects.
func CloseRunner(r any) {
	if c, ok := r.(io.Closer); ok {
		Expect(c.Close()).To(Succeed())
	}
}
