package datapath_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
)

// tenThousandServices are 10k services of ten backends each.
func tenThousandServices() []datapath.Service {
	const n = 10_000
	want := make([]datapath.Service, n)
	for i := range want {
		want[i] = datapath.Service{ID: uint32(i + 1), Protocol: datapath.ProtoTCP,
			Frontend: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 96, byte(i / 250), byte(i%250 + 1)}), 80)}
		for e := range 10 {
			want[i].Backends = append(want[i].Backends, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(100 + e), byte(i / 250), byte(i%250 + 1)}), 8080))
		}
	}
	return want
}

// BenchmarkApplyServicesOneChange is BenchmarkSyncServicesOneChange by
// ApplyServices: the one changed service alone is passed.
func BenchmarkApplyServicesOneChange(b *testing.B) {
	d := datapathtest.Load(b)
	want := tenThousandServices()
	if err := d.SyncServices(want); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := want[(i*7919)%len(want)]
		s.Backends = append([]netip.AddrPort(nil), s.Backends...)
		s.Backends[0] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 99, byte(i >> 8), byte(i)}), 8080)
		if err := d.ApplyServices([]datapath.Service{s}, nil); err != nil {
			b.Fatal(fmt.Errorf("change %d: %w", i, err))
		}
	}
}

// BenchmarkSyncServicesOneChange times SyncServices with 10k services of
// ten backends installed when one service's backends change: the agent's
// write after one EndpointSlice change, comparison of the whole set included.
func BenchmarkSyncServicesOneChange(b *testing.B) {
	d := datapathtest.Load(b)
	const n = 10_000
	want := make([]datapath.Service, n)
	for i := range want {
		want[i] = datapath.Service{ID: uint32(i + 1), Protocol: datapath.ProtoTCP,
			Frontend: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 96, byte(i / 250), byte(i%250 + 1)}), 80)}
		for e := range 10 {
			want[i].Backends = append(want[i].Backends, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(100 + e), byte(i / 250), byte(i%250 + 1)}), 8080))
		}
	}
	if err := d.SyncServices(want); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := &want[(i*7919)%n]
		s.Backends = append([]netip.AddrPort(nil), s.Backends...)
		s.Backends[0] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 99, byte(i >> 8), byte(i)}), 8080)
		if err := d.SyncServices(want); err != nil {
			b.Fatal(fmt.Errorf("change %d: %w", i, err))
		}
	}
}
