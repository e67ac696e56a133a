package datapathstate

import (
	"strings"
	"sync"

	"github.com/kestrelnet/kestrel/agent/policy"
)

// Cookies gives each distinct set of policy origins a number the datapath
// stores in its entries and reports in events, so a flow names its policies.
// Numbers are never reused, so an event read after a policy change still
// names the policies that decided it.
type Cookies struct {
	mu     sync.Mutex
	byKey  map[string]uint32
	byID   map[uint32][]string
	nextID uint32
}

// NewCookies returns an empty table; the first cookie is 1 (0 means none).
func NewCookies() *Cookies {
	return &Cookies{byKey: map[string]uint32{}, byID: map[uint32][]string{}, nextID: 1}
}

// Cookie returns the number of a set of origins, allocating one if needed.
func (t *Cookies) Cookie(origins []policy.Origin) uint32 {
	names := make([]string, len(origins))
	for i, o := range origins {
		names[i] = o.String()
	}
	key := strings.Join(names, ",")
	t.mu.Lock()
	defer t.mu.Unlock()
	if id, ok := t.byKey[key]; ok {
		return id
	}
	id := t.nextID
	t.nextID++
	t.byKey[key] = id
	t.byID[id] = names
	return id
}

// Origins returns the policy names behind a cookie (nil if unknown).
func (t *Cookies) Origins(id uint32) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byID[id]
}
