package datapath_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kestrelnet/kestrel/bench/datapathcost"
	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
)

// BenchmarkServices measures a new flow from a pod to a service frontend, per
// packet, over many distinct flows (bench.c rewrites each repeat to another
// frontend and source port), at 1k, 10k and 100k services with three
// backends each, random and Maglev, against a new flow to a pod (no
// service) on the same datapath: what the service lookup, the backend choice,
// remembering it and the DNAT add. A's egress is enforced and allows the
// backends' port, so policy runs on the backend as in production. The
// measurement is bench/datapathcost's, which `kestrel bench run` also runs.
func BenchmarkServices(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		for _, algo := range []datapath.LBAlgorithm{datapath.LBRandom, datapath.LBMaglev} {
			name := map[datapath.LBAlgorithm]string{datapath.LBRandom: "random", datapath.LBMaglev: "maglev"}[algo]
			b.Run(fmt.Sprintf("services=%d/%s", n, name), func(b *testing.B) {
				if b.N != 1 {
					b.Fatal("run with -benchtime 1x")
				}
				s, err := datapathcost.Services(n, 3, benchSamples, algo)
				var missing *datapath.MissingFeatureError
				if errors.As(err, &missing) {
					datapathtest.SkipOrFail(b, err)
				}
				mustB(b, err)
				svc, pod := s.Service-s.ServiceEmpty, s.Pod-s.PodEmpty
				b.ReportMetric(svc, "service-new-ns/pkt")
				b.ReportMetric(pod, "pod-new-ns/pkt")
				b.ReportMetric(svc-pod, "service-extra-ns/pkt")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

func mustB(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
