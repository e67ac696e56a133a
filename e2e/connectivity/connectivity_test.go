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
			passed, failures, err := framework.RunScenario(ctx, runner, f)
			Expect(err).NotTo(HaveOccurred())
			Expect(failures).To(BeEmpty(), "probes failed on %s:\n%s", cluster.Provider(), failures)
			Expect(passed).To(BeNumerically(">", 0), "no probe ran")
		}, NodeTimeout(5*time.Minute))
	}
})
