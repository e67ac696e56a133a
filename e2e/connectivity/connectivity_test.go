//go:build e2e

package connectivity_test

import (
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kestrelnet/kestrel/e2e/framework"
)

var _ = Describe("connectivity", func() {
	files, err := framework.ScenarioFiles("scenarios/library/connectivity")
	if err != nil {
		panic(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		It(name, func(ctx SpecContext) {
			rep, err := framework.RunScenario(ctx, runner, f)
			Expect(err).NotTo(HaveOccurred())
			Expect(rep.OK()).To(BeTrue(), "probes failed on %s:\n%s", cluster.Provider(), framework.ReportText(rep))
			passed, _, _ := rep.Counts()
			Expect(passed).To(BeNumerically(">", 0), "no probe ran")
			Expect(framework.ReportText(rep)).NotTo(ContainSubstring("passed on their verdict alone"),
				"drop reasons and flows must be checked on live clusters too")
		}, NodeTimeout(5*time.Minute))
	}

	It("fails probes whose verdict, drop reason or deciding policy is wrong", func(ctx SpecContext) {
		rep, err := framework.RunScenario(ctx, runner, "testdata/wrong-expectations.yaml")
		Expect(err).NotTo(HaveOccurred())
		passed, failed, skipped := rep.Counts()
		Expect([]int{passed, failed, skipped}).To(Equal([]int{0, 3, 0}), framework.ReportText(rep))
		text := framework.ReportText(rep)
		Expect(text).To(ContainSubstring("verdict: expected dropped, observed allowed"))
		Expect(text).To(ContainSubstring("drop reason: expected POLICY_DENYLIST, observed POLICY_DENIED"))
		Expect(text).To(ContainSubstring("flow: expected one with policy=some-other-policy"))
	}, NodeTimeout(time.Minute))
})
