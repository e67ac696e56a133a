package api

import (
	"context"
	"net/http"
	"time"
)

// PathFQDNCache serves the DNS proxy's cache of answered names.
const PathFQDNCache = "/v1/fqdn/cache"

// FQDNCacheEntry is one address the DNS proxy saw answered for a name
// (`kestrel fqdn cache list`, as `cilium fqdn cache list`).
type FQDNCacheEntry struct {
	Endpoint   uint32    `json:"endpoint"`
	Name       string    `json:"fqdn"`
	IP         string    `json:"ip"`
	TTL        uint32    `json:"ttl"`
	LookupTime time.Time `json:"lookupTime"`
	Expires    time.Time `json:"expirationTime"`
	// Identity is the identity toFQDNs policy gave the address (0 when no
	// toFQDNs selector selects the name).
	Identity uint32 `json:"identity"`
}

// FQDNCache is the answer of GET /v1/fqdn/cache.
type FQDNCache struct {
	Entries []FQDNCacheEntry `json:"entries"`
	// MinTTL is the agent's --tofqdns-min-ttl, in seconds.
	MinTTL uint32 `json:"minTTL"`
}

// FQDNSource is a Backend that also runs the DNS proxy.
type FQDNSource interface {
	FQDNCache() FQDNCache
}

func registerFQDN(mux *http.ServeMux, b Backend) {
	if fs, ok := b.(FQDNSource); ok {
		mux.HandleFunc("GET "+PathFQDNCache, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, fs.FQDNCache())
		})
	}
}

// FQDNCache returns the agent's DNS proxy cache.
func (c *Client) FQDNCache(ctx context.Context) (FQDNCache, error) {
	var out FQDNCache
	err := c.do(ctx, http.MethodGet, PathFQDNCache, nil, &out)
	return out, err
}
