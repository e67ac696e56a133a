package fqdn

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
)

// The cache outlives the agent process, as Cilium restores the DNS cache
// it keeps in each endpoint's state: a restarted agent must select the
// addresses pods already resolved, or their established connections to
// toFQDNs peers would be denied until the pods ask again. Entries are kept
// with their absolute expiry, so time spent down counts against the TTL.

// savedCache is the file's form; a version lets a future format refuse an
// older file instead of misreading it.
type savedCache struct {
	Version int     `json:"version"`
	Entries []Entry `json:"entries"`
}

const savedVersion = 1

// Save writes the live entries to path, atomically (a crash leaves the old
// file or the new one, never half of one).
func (c *Cache) Save(path string) error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	b, err := json.Marshal(savedCache{Version: savedVersion, Entries: c.List()})
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save fqdn cache: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save fqdn cache: %w", err)
	}
	return nil
}

// Load adds the entries saved at path whose expiry is still ahead and whose
// endpoint keep accepts (nil keeps all), and returns how many it added. A
// missing file is an empty cache, not an error.
func (c *Cache) Load(path string, keep func(endpoint uint32) bool) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("load fqdn cache: %w", err)
	}
	var s savedCache
	if err := json.Unmarshal(b, &s); err != nil {
		return 0, fmt.Errorf("load fqdn cache %s: %w", path, err)
	}
	if s.Version != savedVersion {
		return 0, fmt.Errorf("load fqdn cache %s: version %d, want %d", path, s.Version, savedVersion)
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[cacheKey]map[netip.Addr]lookup{}
	}
	n := 0
	for _, e := range s.Entries {
		if !e.IP.IsValid() || !now.Before(e.Expires) || (keep != nil && !keep(e.Endpoint)) {
			continue
		}
		k := cacheKey{e.Endpoint, Canonical(e.Name)}
		m := c.entries[k]
		if m == nil {
			m = map[netip.Addr]lookup{}
			c.entries[k] = m
		}
		ip := e.IP.Unmap()
		if old, ok := m[ip]; ok && !old.expires.Before(e.Expires) {
			continue
		}
		m[ip] = lookup{at: e.LookupTime, ttl: e.TTL, expires: e.Expires}
		n++
	}
	return n, nil
}

// ForgetEndpoint drops what endpoint asked (it is gone) and reports whether
// a live address went with it; what other endpoints asked stays.
func (c *Cache) ForgetEndpoint(endpoint uint32) bool {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	before := c.liveLocked(now)
	for k := range c.entries {
		if k.endpoint == endpoint {
			delete(c.entries, k)
		}
	}
	after := c.liveLocked(now)
	for name, ips := range before {
		if len(after[name]) != len(ips) {
			return true
		}
	}
	return false
}
