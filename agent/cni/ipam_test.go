package cni

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func testStore(t *testing.T, gw string, cidrs ...string) *ipamStore {
	s := &ipamStore{dir: filepath.Join(t.TempDir(), "ipam"), gateway: netip.MustParseAddr(gw)}
	for _, c := range cidrs {
		s.cidrs = append(s.cidrs, netip.MustParsePrefix(c))
	}
	return s
}

// alloc allocates and returns the addresses as "a,b" ("" on error).
func alloc(s *ipamStore, id string, want ...string) (string, error) {
	var w []netip.Addr
	for _, a := range want {
		w = append(w, netip.MustParseAddr(a))
	}
	ips, err := s.Allocate(id, "eth0", w)
	return joinAddrs(ips), err
}

func TestIPAM(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, s *ipamStore)
	}{
		{"allocation skips the network address and the gateway and records the owner", func(t *testing.T, s *ipamStore) {
			ip, err := alloc(s, "c1")
			if err != nil || ip != "10.244.0.2" {
				t.Fatalf("got %v, %v; want 10.244.0.2", ip, err)
			}
			b, _ := os.ReadFile(filepath.Join(s.dir, "10.244.0.2"))
			if string(b) != "c1\neth0" {
				t.Errorf("record = %q", b)
			}
		}},
		{"the same container gets the same address again", func(t *testing.T, s *ipamStore) {
			a, _ := alloc(s, "c1")
			b, err := alloc(s, "c1")
			if err != nil || a != b {
				t.Fatalf("second allocation %v, %v; first %v", b, err, a)
			}
		}},
		{"a released address is not handed out next", func(t *testing.T, s *ipamStore) {
			a, _ := alloc(s, "c1")
			s.Release("c1", "eth0")
			b, _ := alloc(s, "c2")
			if a == b {
				t.Errorf("reused %s at once", a)
			}
		}},
		{"allocation wraps around to free addresses", func(t *testing.T, s *ipamStore) {
			s.cidrs = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/29")} // .2-.6 usable
			for i := range 5 {
				if _, err := alloc(s, fmt.Sprint("c", i)); err != nil {
					t.Fatal(err)
				}
			}
			s.Release("c1", "eth0") // frees .3
			ip, err := alloc(s, "c9")
			if err != nil || ip != "10.244.0.3" {
				t.Errorf("got %v, %v; want the freed 10.244.0.3", ip, err)
			}
		}},
		{"a requested address is honoured", func(t *testing.T, s *ipamStore) {
			ip, err := alloc(s, "c1", "10.244.0.200")
			if err != nil || ip != "10.244.0.200" {
				t.Fatalf("got %v, %v", ip, err)
			}
		}},
		{"requested addresses that cannot be given are refused with the reason", func(t *testing.T, s *ipamStore) {
			alloc(s, "c1", "10.244.0.9")
			for ip, want := range map[string]string{
				"10.244.0.9":   "taken by container c1",
				"10.244.0.1":   "it is the gateway",
				"10.244.0.0":   "network address",
				"10.244.0.255": "broadcast address",
				"10.245.0.9":   "outside podCIDRs 10.244.0.0/24",
				"fd00::9":      "requested KESTREL_IP fd00::9: no IPv6 range in podCIDRs 10.244.0.0/24",
			} {
				_, err := alloc(s, "c2", ip)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%s: error %v, want %q", ip, err, want)
				}
			}
		}},
		{"a container cannot switch to another requested address", func(t *testing.T, s *ipamStore) {
			alloc(s, "c1")
			_, err := alloc(s, "c1", "10.244.0.50")
			if err == nil || !strings.Contains(err.Error(), "already holds") {
				t.Errorf("error = %v", err)
			}
		}},
		{"a /30 holds one pod and then says it is full", func(t *testing.T, s *ipamStore) {
			s.cidrs = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/30")}
			if ip, err := alloc(s, "c1"); err != nil || ip != "10.244.0.2" {
				t.Fatalf("got %v, %v", ip, err)
			}
			_, err := alloc(s, "c2")
			if err == nil || !strings.Contains(err.Error(), "no free IPv4 address left in podCIDRs 10.244.0.0/30") {
				t.Errorf("error = %v", err)
			}
		}},
		{"releasing an unknown container or a missing dir is fine", func(t *testing.T, s *ipamStore) {
			if err := s.Release("nobody", "eth0"); err != nil {
				t.Error(err)
			}
			alloc(s, "c1")
			if err := s.Release("nobody", "eth0"); err != nil {
				t.Error(err)
			}
			if ips, _ := s.Lookup("c1", "eth0"); len(ips) != 1 {
				t.Error("released someone else's address")
			}
		}},
		{"concurrent allocations never share an address", func(t *testing.T, s *ipamStore) {
			var wg sync.WaitGroup
			got := make([]string, 50)
			for i := range got {
				wg.Go(func() {
					ip, err := alloc(s, fmt.Sprint("c", i))
					if err != nil {
						t.Error(err)
					}
					got[i] = ip
				})
			}
			wg.Wait()
			seen := map[string]bool{}
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
			c.run(t, testStore(t, "10.244.0.1", "10.244.0.0/24"))
		})
	}
}

func TestIPAMDualStack(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, s *ipamStore)
	}{
		{"a pod gets one address per family, IPv4 first, each recorded", func(t *testing.T, s *ipamStore) {
			ips, err := alloc(s, "c1")
			if err != nil || ips != "10.244.0.2,fd00:10:244::1" {
				t.Fatalf("got %q, %v; want 10.244.0.2 and fd00:10:244::1 (past the subnet-router anycast address)", ips, err)
			}
			for _, f := range []string{"10.244.0.2", "fd00:10:244::1"} {
				if b, _ := os.ReadFile(filepath.Join(s.dir, f)); string(b) != "c1\neth0" {
					t.Errorf("record %s = %q", f, b)
				}
			}
			if got, _ := s.Lookup("c1", "eth0"); joinAddrs(got) != ips {
				t.Errorf("Lookup = %v, want %s", got, ips)
			}
			again, err := alloc(s, "c1")
			if err != nil || again != ips {
				t.Errorf("a retried allocation got %q, %v; want %s", again, err, ips)
			}
		}},
		{"a /64 allocates at once without listing the range", func(t *testing.T, s *ipamStore) {
			start := time.Now()
			seen := map[string]bool{}
			for i := range 20 {
				ips, err := alloc(s, fmt.Sprint("c", i))
				if err != nil {
					t.Fatal(err)
				}
				if seen[ips] {
					t.Fatalf("%s handed out twice", ips)
				}
				seen[ips] = true
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("20 allocations took %s", d)
			}
		}},
		{"requested addresses are honoured per family; a family not named gets a free one", func(t *testing.T, s *ipamStore) {
			if ips, err := alloc(s, "c1", "10.244.0.10", "fd00:10:244::a"); err != nil || ips != "10.244.0.10,fd00:10:244::a" {
				t.Errorf("both requested: got %q, %v", ips, err)
			}
			if ips, err := alloc(s, "c2", "fd00:10:244::b"); err != nil || ips != "10.244.0.2,fd00:10:244::b" {
				t.Errorf("IPv6 requested: got %q, %v", ips, err)
			}
		}},
		{"a refused second family leaves the first unreserved", func(t *testing.T, s *ipamStore) {
			alloc(s, "c1", "10.244.0.10", "fd00:10:244::a")
			_, err := alloc(s, "c2", "10.244.0.11", "fd00:10:244::a")
			if err == nil || !strings.Contains(err.Error(), "fd00:10:244::a is taken by container c1") {
				t.Fatalf("error = %v", err)
			}
			if _, err := os.Stat(filepath.Join(s.dir, "10.244.0.11")); !os.IsNotExist(err) {
				t.Errorf("10.244.0.11 stays reserved after the ADD failed: %v", err)
			}
			if ips, _ := s.Lookup("c2", "eth0"); len(ips) != 0 {
				t.Errorf("c2 holds %v", ips)
			}
		}},
		{"the subnet-router anycast address is refused", func(t *testing.T, s *ipamStore) {
			_, err := alloc(s, "c1", "fd00:10:244::")
			if err == nil || !strings.Contains(err.Error(), "subnet-router anycast address of fd00:10:244::/64") {
				t.Errorf("error = %v", err)
			}
		}},
		{"an IPv6 /127 holds one pod and then says it is full", func(t *testing.T, s *ipamStore) {
			s.cidrs = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/24"), netip.MustParsePrefix("fd00:10:244::/127")}
			if ips, err := alloc(s, "c1"); err != nil || ips != "10.244.0.2,fd00:10:244::1" {
				t.Fatalf("got %q, %v", ips, err)
			}
			_, err := alloc(s, "c2")
			if err == nil || !strings.Contains(err.Error(), "no free IPv6 address left in podCIDRs fd00:10:244::/127") {
				t.Errorf("error = %v", err)
			}
			if _, err := os.Stat(filepath.Join(s.dir, "10.244.0.3")); !os.IsNotExist(err) {
				t.Errorf("c2's IPv4 address stays reserved after IPv6 ran out: %v", err)
			}
		}},
		{"IPv6 alone works without a gateway", func(t *testing.T, s *ipamStore) {
			s.cidrs, s.gateway = []netip.Prefix{netip.MustParsePrefix("fd00:10:244::/64")}, netip.Addr{}
			if ips, err := alloc(s, "c1"); err != nil || ips != "fd00:10:244::1" {
				t.Errorf("got %q, %v", ips, err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, testStore(t, "10.244.0.1", "10.244.0.0/24", "fd00:10:244::/64"))
		})
	}
}
