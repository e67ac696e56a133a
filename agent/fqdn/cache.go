package fqdn

import (
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"
)

// Cache holds the addresses the DNS proxy saw answered for each name, per
// endpoint that asked, until their TTL (at least MinTTL) runs out. toFQDNs
// selectors select the addresses of the names they match (Names).
type Cache struct {
	// MinTTL is the shortest time an answered address is kept, whatever its
	// TTL (Cilium's --tofqdns-min-ttl): short TTLs would otherwise close
	// connections that outlive them.
	MinTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	entries map[cacheKey]map[netip.Addr]lookup
	saveMu  sync.Mutex // orders Saves, so the file ends as the last one wrote it
}

type cacheKey struct {
	endpoint uint32
	name     string
}

type lookup struct {
	at      time.Time
	ttl     uint32
	expires time.Time
}

// Entry is one cached address, as `kestrel fqdn cache list` shows it.
type Entry struct {
	Endpoint   uint32     `json:"endpoint"`
	Name       string     `json:"fqdn"`
	IP         netip.Addr `json:"ip"`
	TTL        uint32     `json:"ttl"`
	LookupTime time.Time  `json:"lookupTime"`
	Expires    time.Time  `json:"expirationTime"`
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Update records an answer for name asked by endpoint. It reports whether
// the set of live names and addresses grew (a regeneration is needed); a
// refreshed TTL is no change.
func (c *Cache) Update(endpoint uint32, name string, ips []netip.Addr, ttl uint32) bool {
	name = Canonical(name)
	now := c.now()
	keep := max(time.Duration(ttl)*time.Second, c.MinTTL)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[cacheKey]map[netip.Addr]lookup{}
	}
	known := c.liveLocked(now)
	k := cacheKey{endpoint, name}
	m := c.entries[k]
	if m == nil {
		m = map[netip.Addr]lookup{}
		c.entries[k] = m
	}
	grew := false
	for _, ip := range ips {
		ip = ip.Unmap()
		l := lookup{at: now, ttl: ttl, expires: now.Add(keep)}
		if old, ok := m[ip]; ok && old.expires.After(l.expires) {
			l.expires = old.expires
		}
		m[ip] = l
		if !slices.Contains(known[name], ip) {
			grew = true
		}
	}
	return grew
}

// Expire forgets what outlived its TTL and reports whether anything went.
func (c *Cache) Expire() bool {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	gone := false
	for k, m := range c.entries {
		for ip, l := range m {
			if !now.Before(l.expires) {
				delete(m, ip)
				gone = true
			}
		}
		if len(m) == 0 {
			delete(c.entries, k)
		}
	}
	return gone
}

// Names returns the live addresses of every name, whichever endpoint asked,
// each list sorted.
func (c *Cache) Names() map[string][]netip.Addr {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.liveLocked(c.now())
}

func (c *Cache) liveLocked(now time.Time) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for k, m := range c.entries {
		for ip, l := range m {
			if now.Before(l.expires) && !slices.Contains(out[k.name], ip) {
				out[k.name] = append(out[k.name], ip)
			}
		}
	}
	for _, ips := range out {
		slices.SortFunc(ips, netip.Addr.Compare)
	}
	return out
}

// List returns the live entries sorted by endpoint, name and address.
func (c *Cache) List() []Entry {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Entry
	for k, m := range c.entries {
		for ip, l := range m {
			if now.Before(l.expires) {
				out = append(out, Entry{Endpoint: k.endpoint, Name: k.name, IP: ip, TTL: l.ttl, LookupTime: l.at, Expires: l.expires})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Endpoint != b.Endpoint {
			return a.Endpoint < b.Endpoint
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.IP.Less(b.IP)
	})
	return out
}

// NextExpiry is when the next address expires (zero when none is cached).
func (c *Cache) NextExpiry() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next time.Time
	for _, m := range c.entries {
		for _, l := range m {
			if next.IsZero() || l.expires.Before(next) {
				next = l.expires
			}
		}
	}
	return next
}
