package datapathcost

import (
	"errors"
	"os"
	"testing"

	"github.com/kestrelnet/kestrel/datapath"
)

// The measurement on a small table: each program costs more than the empty
// one (the rewrite alone), and Services' own checks (every packet forwarded,
// service flows remembered) pass.
func TestServicesMeasuresEveryProgramOnRealFlows(t *testing.T) {
	s, err := Services(100, 3, 1, datapath.LBRandom)
	var missing *datapath.MissingFeatureError
	if errors.As(err, &missing) && os.Getenv("KESTREL_REQUIRE_PRIVILEGED") != "1" {
		t.Skipf("datapath unavailable here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if s.ServiceEmpty <= 0 || s.PodEmpty <= 0 || s.Service <= s.ServiceEmpty || s.Pod <= s.PodEmpty {
		t.Fatalf("sample %+v: the pipeline must cost more than the empty program", s)
	}
	if s.ServiceOverPod() <= 0 || s.ServiceOverEmpty() <= 1 || s.PodOverEmpty() <= 1 {
		t.Fatalf("ratios of %+v", s)
	}
}
