package api

import (
	"context"
	"net/http"
)

// PathIdentities serves the identities the agent numbered.
const PathIdentities = "/v1/identities"

// Identity is one identity and its labels (`kestrel identity list`, as
// `cilium identity list`).
type Identity struct {
	ID     uint32   `json:"id"`
	Labels []string `json:"labels"`
}

// IdentitySource is a Backend that numbers identities.
type IdentitySource interface {
	Identities() []Identity
}

func registerIdentities(mux *http.ServeMux, b Backend) {
	if is, ok := b.(IdentitySource); ok {
		mux.HandleFunc("GET "+PathIdentities, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, is.Identities())
		})
	}
}

// Identities returns the agent's identities, sorted by number.
func (c *Client) Identities(ctx context.Context) ([]Identity, error) {
	var out []Identity
	err := c.do(ctx, http.MethodGet, PathIdentities, nil, &out)
	return out, err
}
