package unit

import (
	"strings"

	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/datapath"
)

// cookieTable gives each distinct set of policy origins a number the datapath
// stores in its entries and reports in events, so a flow names its policies.
type cookieTable struct {
	byKey  map[string]uint32
	byID   map[uint32][]string
	nextID uint32
}

func newCookieTable() *cookieTable {
	return &cookieTable{byKey: map[string]uint32{}, byID: map[uint32][]string{}, nextID: 1}
}

func (t *cookieTable) cookie(origins []policy.Origin) uint32 {
	names := make([]string, len(origins))
	for i, o := range origins {
		names[i] = o.String()
	}
	key := strings.Join(names, ",")
	if id, ok := t.byKey[key]; ok {
		return id
	}
	id := t.nextID
	t.nextID++
	t.byKey[key] = id
	t.byID[id] = names
	return id
}

func (t *cookieTable) origins(id uint32) []string { return t.byID[id] }

// policyEntries translates resolved map state into datapath entries.
func (s *session) policyEntries(p *policy.EndpointPolicy) []datapath.PolicyEntry {
	out := make([]datapath.PolicyEntry, 0, len(p.Entries))
	for _, k := range p.SortedKeys() {
		e := p.Entries[k]
		pe := datapath.PolicyEntry{
			Identity:  uint32(k.Identity),
			Direction: datapath.Ingress,
			Protocol:  k.Protocol,
			PortLo:    k.PortLo,
			PortHi:    k.PortHi,
			Action:    datapath.PolicyAllow,
			ProxyPort: e.ProxyPort,
			Cookie:    s.cookies.cookie(e.Origins),
		}
		if k.Direction == policy.Egress {
			pe.Direction = datapath.Egress
		}
		switch {
		case e.Deny:
			pe.Action = datapath.PolicyDeny
		case e.ProxyPort != 0:
			pe.Action = datapath.PolicyRedirect
		}
		out = append(out, pe)
	}
	return out
}
