//go:build e2e

// The lifecycle suite brings a cluster up, uses it through kubectl, and takes
// it down, also after a crash, checking that nothing is left behind.
package lifecycle_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestLifecycle(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "lifecycle")
}
