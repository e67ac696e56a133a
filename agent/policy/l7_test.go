package policy

import (
	"testing"
)

// HTTP rules land in the redirected entry they apply to: the rules of every
// policy redirecting the key, node-wide ports per direction, and a plain
// allow of the same key wildcards L7 (the proxy then allows every request).
func TestHTTPRulesReachTheirEntries(t *testing.T) {
	r := resolveYAML(t, cnpHeader+`spec:
  endpointSelector: {matchLabels: {app: a}}
  ingress:
    - toPorts: [{ports: [{port: "80", protocol: TCP}], rules: {http: [{method: GET, path: /public}]}}]
    - toPorts: [{ports: [{port: "80", protocol: TCP}], rules: {http: [{method: POST}]}}]
    - fromEndpoints: [{matchLabels: {app: b}}]
      toPorts: [{ports: [{port: "8080", protocol: TCP}], rules: {http: [{path: /x}]}}]
    - fromEndpoints: [{matchLabels: {app: b}}]
      toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
  egress:
    - toPorts: [{ports: [{port: "80", protocol: TCP}], rules: {http: [{method: GET}]}}]
`)
	ep := r.Endpoints["x/a"]
	b := r.Endpoints["x/b"].Identity
	pol := ep.Policy

	k, e, ok := pol.Lookup(Ingress, uint32(b), ProtoTCP, 80)
	if !ok || e.ProxyPort != ProxyPortHTTPIngress || len(e.HTTP) != 2 || e.L7Wildcard {
		t.Fatalf("ingress 80: key %v entry %+v, want the HTTP ingress port with both policies' rules and no wildcard", k, e)
	}
	_, e, ok = pol.Lookup(Ingress, uint32(b), ProtoTCP, 8080)
	if !ok || e.ProxyPort != ProxyPortHTTPIngress || !e.L7Wildcard || len(e.HTTP) != 1 {
		t.Fatalf("ingress 8080 from b: entry %+v, want redirected with the rule and the L4-only allow's wildcard", e)
	}
	if _, _, ok = pol.Lookup(Ingress, uint32(b), ProtoTCP, 8081); ok {
		t.Fatal("a port no rule names was found")
	}
	if _, e, ok = pol.Lookup(Egress, uint32(b), ProtoTCP, 80); !ok || e.ProxyPort != ProxyPortHTTPEgress {
		t.Fatalf("egress 80: entry %+v, want the HTTP egress port", e)
	}
}

// Lookup agrees with the datapath's order: deny wins, then the longer
// prefix, then the identity's own key.
func TestLookupPrefersAsTheDatapathDoes(t *testing.T) {
	p := &EndpointPolicy{IngressEnforced: true, Entries: map[Key]Entry{
		{Identity: 0, Protocol: ProtoTCP, PortLo: 80, PortHi: 80}:           {ProxyPort: 1},
		{Identity: 5, Protocol: ProtoAny}:                                   {},
		{Identity: 6, Protocol: ProtoTCP, PortLo: 80, PortHi: 80}:           {ProxyPort: 2},
		{Identity: 7, Protocol: ProtoTCP, AnyPort: true}:                    {Deny: true},
		{Identity: 8, Protocol: ProtoTCP, PortLo: 64, PortHi: 127}:          {},
		{Identity: 8, Protocol: ProtoTCP, PortLo: 80, PortHi: 81}:           {ProxyPort: 3},
		{Identity: 0, Direction: Egress, Protocol: ProtoTCP, AnyPort: true}: {},
	}}
	for _, c := range []struct {
		id    uint32
		port  uint16
		proxy uint16
		deny  bool
	}{
		{5, 80, 1, false}, // the any-identity port key is more specific than 5's L3 key
		{6, 80, 2, false}, // a tie goes to the identity's own key
		{7, 80, 0, true},  // deny wins over the any-identity redirect
		{8, 80, 1, false}, // 80/16 of any identity beats 80-81 (80/15) of 8
		{8, 81, 3, false}, // the narrower of 8's ranges
		{8, 100, 0, false},
		{9, 80, 1, false},
	} {
		_, e, ok := p.Lookup(Ingress, c.id, ProtoTCP, c.port)
		if !ok || e.ProxyPort != c.proxy || e.Deny != c.deny {
			t.Errorf("identity %d port %d: %+v ok=%v, want proxy %d deny %v", c.id, c.port, e, ok, c.proxy, c.deny)
		}
	}
}
