package fqdn

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// A saved cache loads into a new one (a restarted agent) with each entry's
// expiry as it was: time spent down counts against the TTL, and what
// expired meanwhile or belonged to an endpoint that is gone is not loaded.
func TestCacheSurvivesARestartWithItsExpiry(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	path := filepath.Join(t.TempDir(), "fqdn-cache.json")
	a, b, gone := netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("1.0.0.1"), netip.MustParseAddr("203.0.113.9")
	old := &Cache{Now: clock}
	old.Update(7, "one.one.one.one", []netip.Addr{a, b}, 60)
	old.Update(7, "short.example.com", []netip.Addr{netip.MustParseAddr("203.0.113.8")}, 5)
	old.Update(9, "other.example.com", []netip.Addr{gone}, 600)
	if err := old.Save(path); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Second) // the agent was down for 10 s
	restored := &Cache{Now: clock}
	n, err := restored.Load(path, func(ep uint32) bool { return ep != 9 })
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("loaded %d entries, want 2 (the 5 s answer expired while down, endpoint 9 is gone): %v", n, restored.List())
	}
	if got := restored.Names()["one.one.one.one."]; !slices.Equal(got, []netip.Addr{b, a}) {
		t.Fatalf("restored Names = %v", restored.Names())
	}
	for _, e := range restored.List() {
		if want := time.Unix(1060, 0); !e.Expires.Equal(want) || e.TTL != 60 {
			t.Fatalf("restored %+v: want expiry %v and TTL 60, as saved", e, want)
		}
	}
	now = now.Add(49 * time.Second)
	if restored.Expire() {
		t.Fatal("a restored entry expired before its saved expiry")
	}
	now = now.Add(time.Second)
	if !restored.Expire() || len(restored.List()) != 0 {
		t.Fatalf("restored entries outlived their saved expiry: %v", restored.List())
	}
	if n, err := (&Cache{}).Load(filepath.Join(t.TempDir(), "none.json"), nil); n != 0 || err != nil {
		t.Fatalf("a missing file: %d, %v; want an empty cache and no error", n, err)
	}
	if err := os.WriteFile(path, []byte(`{"version": 2, "entries": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Cache{}).Load(path, nil); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("a file of another version: %v; want it refused by its version", err)
	}
}

// A removed endpoint's lookups go; an address another endpoint also asked
// for stays selected.
func TestCacheForgetsARemovedEndpoint(t *testing.T) {
	c := &Cache{}
	a, b := netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("1.0.0.1")
	c.Update(7, "one.one.one.one", []netip.Addr{a, b}, 60)
	c.Update(8, "one.one.one.one", []netip.Addr{a}, 60)
	if !c.ForgetEndpoint(7) {
		t.Fatal("forgetting endpoint 7 took 1.0.0.1 away but reported no change")
	}
	if got := c.Names()["one.one.one.one."]; !slices.Equal(got, []netip.Addr{a}) {
		t.Fatalf("Names after endpoint 7 left = %v, want only endpoint 8's 1.1.1.1", got)
	}
	if c.ForgetEndpoint(7) {
		t.Fatal("forgetting an endpoint with nothing cached reported a change")
	}
}
