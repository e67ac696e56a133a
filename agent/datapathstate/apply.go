package datapathstate

import (
	"slices"
	"sort"

	"github.com/kestrelnet/kestrel/datapath"
)

// Writer is the part of *datapath.Datapath that Apply uses; tests substitute
// a recorder.
type Writer interface {
	SyncIPCache([]datapath.IPCacheEntry) error
	SetPolicies(map[uint32][]datapath.PolicyEntry) error
	UpsertEndpoint(datapath.Endpoint) error
	DeleteEndpoint(datapath.Endpoint) error
}

// Apply writes st over what an earlier Apply installed (prev, by key) and
// returns what is installed now. The order keeps traffic safe: the ipcache
// first, so new peers are known; policies next, swapped whole per endpoint;
// then the endpoints that use them; endpoints that left go last.
//
// An endpoint whose addresses changed is removed first, because the datapath
// removes an endpoint's policy with its addresses; SetPolicies then installs
// the policy afresh.
func Apply(w Writer, prev map[string]datapath.Endpoint, st *State) (map[string]datapath.Endpoint, error) {
	installed := make(map[string]datapath.Endpoint, len(prev))
	for k, ep := range prev {
		installed[k] = ep
	}
	if err := w.SyncIPCache(st.IPCache); err != nil {
		return installed, err
	}
	keys := make([]string, 0, len(st.Endpoints))
	for k := range st.Endpoints {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ep := st.Endpoints[k]
		if old, ok := installed[k]; ok && (old.ID != ep.ID || !slices.Equal(old.IPs, ep.IPs)) {
			if err := w.DeleteEndpoint(old); err != nil {
				return installed, err
			}
			delete(installed, k)
		}
	}
	if err := w.SetPolicies(st.Policies); err != nil {
		return installed, err
	}
	for _, k := range keys {
		if err := w.UpsertEndpoint(st.Endpoints[k]); err != nil {
			return installed, err
		}
		installed[k] = st.Endpoints[k]
	}
	for k, old := range installed {
		if _, ok := st.Endpoints[k]; !ok {
			if err := w.DeleteEndpoint(old); err != nil {
				return installed, err
			}
			delete(installed, k)
		}
	}
	return installed, nil
}
