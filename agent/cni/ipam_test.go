package cni

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func testStore(t *testing.T, cidr, gw string) *ipamStore {
	return &ipamStore{dir: filepath.Join(t.TempDir(), "ipam"), cidrs: []netip.Prefix{netip.MustParsePrefix(cidr)}, gateway: netip.MustParseAddr(gw)}
}

func TestIPAM(t *testing.T) {
	none := netip.Addr{}
	cases := []struct {
		name string
		run  func(t *testing.T, s *ipamStore)
	}{
		{"allocation skips the network address and the gateway and records the owner", func(t *testing.T, s *ipamStore) {
			ip, err := s.Allocate("c1", "eth0", none)
			if err != nil || ip.String() != "10.244.0.2" {
				t.Fatalf("got %v, %v; want 10.244.0.2", ip, err)
			}
			b, _ := os.ReadFile(filepath.Join(s.dir, "10.244.0.2"))
			if string(b) != "c1\neth0" {
				t.Errorf("record = %q", b)
			}
		}},
		{"the same container gets the same address again", func(t *testing.T, s *ipamStore) {
			a, _ := s.Allocate("c1", "eth0", none)
			b, err := s.Allocate("c1", "eth0", none)
			if err != nil || a != b {
				t.Fatalf("second allocation %v, %v; first %v", b, err, a)
			}
		}},
		{"a released address is not handed out next", func(t *testing.T, s *ipamStore) {
			a, _ := s.Allocate("c1", "eth0", none)
			s.Release("c1", "eth0")
			b, _ := s.Allocate("c2", "eth0", none)
			if a == b {
				t.Errorf("reused %s at once", a)
			}
		}},
		{"allocation wraps around to free addresses", func(t *testing.T, s *ipamStore) {
			s.cidrs = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/29")} // .2-.6 usable
			for i := range 5 {
				if _, err := s.Allocate(fmt.Sprint("c", i), "eth0", none); err != nil {
					t.Fatal(err)
				}
			}
			s.Release("c1", "eth0") // frees .3
			ip, err := s.Allocate("c9", "eth0", none)
			if err != nil || ip.String() != "10.244.0.3" {
				t.Errorf("got %v, %v; want the freed 10.244.0.3", ip, err)
			}
		}},
		{"a requested address is honoured", func(t *testing.T, s *ipamStore) {
			ip, err := s.Allocate("c1", "eth0", netip.MustParseAddr("10.244.0.200"))
			if err != nil || ip.String() != "10.244.0.200" {
				t.Fatalf("got %v, %v", ip, err)
			}
		}},
		{"requested addresses that cannot be given are refused with the reason", func(t *testing.T, s *ipamStore) {
			s.Allocate("c1", "eth0", netip.MustParseAddr("10.244.0.9"))
			for ip, want := range map[string]string{
				"10.244.0.9":   "taken by container c1",
				"10.244.0.1":   "it is the gateway",
				"10.244.0.0":   "network address",
				"10.244.0.255": "broadcast address",
				"10.245.0.9":   "outside podCIDRs 10.244.0.0/24",
			} {
				_, err := s.Allocate("c2", "eth0", netip.MustParseAddr(ip))
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%s: error %v, want %q", ip, err, want)
				}
			}
		}},
		{"a container cannot switch to another requested address", func(t *testing.T, s *ipamStore) {
			s.Allocate("c1", "eth0", none)
			_, err := s.Allocate("c1", "eth0", netip.MustParseAddr("10.244.0.50"))
			if err == nil || !strings.Contains(err.Error(), "already holds") {
				t.Errorf("error = %v", err)
			}
		}},
		{"a /30 holds one pod and then says it is full", func(t *testing.T, s *ipamStore) {
			s.cidrs = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/30")}
			if ip, err := s.Allocate("c1", "eth0", none); err != nil || ip.String() != "10.244.0.2" {
				t.Fatalf("got %v, %v", ip, err)
			}
			_, err := s.Allocate("c2", "eth0", none)
			if err == nil || !strings.Contains(err.Error(), "no free address left in podCIDRs 10.244.0.0/30") {
				t.Errorf("error = %v", err)
			}
		}},
		{"releasing an unknown container or a missing dir is fine", func(t *testing.T, s *ipamStore) {
			if err := s.Release("nobody", "eth0"); err != nil {
				t.Error(err)
			}
			s.Allocate("c1", "eth0", none)
			if err := s.Release("nobody", "eth0"); err != nil {
				t.Error(err)
			}
			if _, ok, _ := s.Lookup("c1", "eth0"); !ok {
				t.Error("released someone else's address")
			}
		}},
		{"concurrent allocations never share an address", func(t *testing.T, s *ipamStore) {
			var wg sync.WaitGroup
			got := make([]netip.Addr, 50)
			for i := range got {
				wg.Go(func() {
					ip, err := s.Allocate(fmt.Sprint("c", i), "eth0", none)
					if err != nil {
						t.Error(err)
					}
					got[i] = ip
				})
			}
			wg.Wait()
			seen := map[netip.Addr]bool{}
			for _, ip := range got {
				if seen[ip] {
					t.Errorf("%s handed out twice", ip)
				}
				seen[ip] = true
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, testStore(t, "10.244.0.0/24", "10.244.0.1"))
		})
	}
}
