// Package datapathtest loads the real datapath for tests. A test may skip only
// when a kernel feature is absent (named in the skip message); lacking root is
// a failure, not a skip. With
// KESTREL_REQUIRE_PRIVILEGED=1 (set by CI) that skip becomes a failure.
package datapathtest

import (
	"errors"
	"os"
	"testing"

	"github.com/kestrelnet/kestrel/datapath"
)

// Load returns a freshly loaded datapath, closed when the test ends.
func Load(tb testing.TB) *datapath.Datapath {
	tb.Helper()
	return LoadConfig(tb, datapath.Config{})
}

// LoadConfig is Load with load-time settings. Tests run frames, so the
// datapath has test devices; it reports every packet unless the test asks for
// another monitor aggregation level.
func LoadConfig(tb testing.TB, cfg datapath.Config) *datapath.Datapath {
	tb.Helper()
	cfg.TestDevices = true
	if cfg.MonitorAggregation == "" {
		cfg.MonitorAggregation = datapath.MonitorAggregationNone
	}
	d, err := datapath.Load(cfg)
	if err != nil {
		SkipOrFail(tb, err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// SkipOrFail skips when a kernel feature is absent (the error names it),
// unless CI demands privileged tests run; anything else, lacking privileges
// included, fails the test.
func SkipOrFail(tb testing.TB, err error) {
	tb.Helper()
	var missing *datapath.MissingFeatureError
	if errors.As(err, &missing) && os.Getenv("KESTREL_REQUIRE_PRIVILEGED") != "1" {
		tb.Skipf("datapath unavailable here: %v", err)
	}
	tb.Fatalf("load datapath: %v", err)
}
