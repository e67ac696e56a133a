//go:build e2e

// The hubble suite runs the real hubble CLI (Cilium's, built by `make
// hubble`) against the sim cluster's relay, over real dropped traffic.
package hubble_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestHubble(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "hubble")
}
