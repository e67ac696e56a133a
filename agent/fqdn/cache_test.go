package fqdn

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestCacheTTLAndMinTTL(t *testing.T) {
	now := time.Unix(1000, 0)
	c := &Cache{MinTTL: 10 * time.Second, Now: func() time.Time { return now }}
	a, b := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
	if !c.Update(7, "one.one.one.one", []netip.Addr{a}, 2) {
		t.Fatal("a new address is no change")
	}
	if c.Update(8, "ONE.one.one.one.", []netip.Addr{a}, 60) {
		t.Fatal("the same address asked by another endpoint is a change")
	}
	if !c.Update(7, "one.one.one.one.", []netip.Addr{b}, 60) {
		t.Fatal("a second address is no change")
	}
	if got := c.Names()["one.one.one.one."]; !slices.Equal(got, []netip.Addr{a, b}) {
		t.Fatalf("Names = %v", got)
	}
	// TTL 2 s is raised to the 10 s minimum: still there after 5 s.
	now = now.Add(5 * time.Second)
	if c.Expire() {
		t.Fatal("an address under the minimum TTL expired")
	}
	now = now.Add(6 * time.Second)
	if !c.Expire() {
		t.Fatal("nothing expired after the minimum TTL")
	}
	// Endpoint 8's lookup of a (TTL 60) keeps the address selected.
	if got := c.Names()["one.one.one.one."]; !slices.Equal(got, []netip.Addr{a, b}) {
		t.Fatalf("Names after endpoint 7's a expired = %v", got)
	}
	if n := len(c.List()); n != 2 {
		t.Fatalf("List has %d entries, want 2 (endpoint 8's a, endpoint 7's b)", n)
	}
	now = now.Add(time.Minute)
	c.Expire()
	if len(c.Names()) != 0 || len(c.List()) != 0 {
		t.Fatalf("entries outlived their TTL: %v", c.List())
	}
}
