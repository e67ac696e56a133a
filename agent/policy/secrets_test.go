package policy

import (
	"strings"
	"testing"
)

const secretPolicy = cnpHeader + `spec:
  endpointSelector: {matchLabels: {app: a}}
  egress:
    - toPorts:
      - ports: [{port: "80", protocol: TCP}]
        rules:
          http:
          - method: POST
            headerMatches:
            - {name: Authorization, mismatch: REPLACE, secret: {name: header-match}}
            - {name: X-Other, secret: {namespace: y, name: other}, value: fallback}
`

func entryMatches(t *testing.T, r *Result) []HeaderMatch {
	t.Helper()
	_, e, ok := r.Endpoints["x/a"].Policy.Lookup(Egress, 0, ProtoTCP, 80)
	if !ok || len(e.HTTP) != 1 {
		t.Fatalf("egress 80: %+v, want one HTTP rule", e)
	}
	return e.HTTP[0].HeaderMatches
}

// A header match takes its Secret's only value, from the policy's own
// namespace unless the reference names one; the match's own value is
// Cilium's fallback when the Secret cannot be read; without one the match
// is unresolved, and the proxy fails the rule closed.
func TestHeaderMatchesTakeTheirSecretsValues(t *testing.T) {
	r := resolveInput(t, secretPolicy, Input{Secrets: Secrets{
		"x/header-match": {"value": []byte("Bearer 123456")},
		"y/other":        {"v": []byte("from-y")},
	}})
	hm := entryMatches(t, r)
	if hm[0].Value != "Bearer 123456" || hm[0].Secret != nil || hm[0].Unresolved != "" {
		t.Errorf("Authorization match = %+v, want the Secret x/header-match's value", hm[0])
	}
	if hm[1].Value != "from-y" {
		t.Errorf("X-Other match = %+v, want y/other's value, not the fallback", hm[1])
	}

	for name, secrets := range map[string]Secrets{
		"missing":                {},
		"in the wrong namespace": {"default/header-match": {"value": []byte("Bearer 123456")}},
		"two entries":            {"x/header-match": {"a": []byte("1"), "b": []byte("2")}},
		"empty":                  {"x/header-match": {"value": nil}},
	} {
		hm := entryMatches(t, resolveInput(t, secretPolicy, Input{Secrets: secrets}))
		if hm[0].Unresolved == "" || hm[0].Value != "" {
			t.Errorf("%s Secret: Authorization match = %+v, want unresolved (fails closed)", name, hm[0])
		}
		if hm[1].Value != "fallback" || hm[1].Unresolved != "" {
			t.Errorf("%s Secret: X-Other match = %+v, want its fallback value", name, hm[1])
		}
	}
}

// A policy needing a Secret that cannot be read is refused with the file,
// the line and the field; one with a fallback value is not.
func TestCheckSecretsNamesFileAndField(t *testing.T) {
	objs, err := ParseYAML([]byte(secretPolicy), "pol.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if errs := CheckSecrets(objs, Secrets{"x/header-match": {"value": []byte("v")}}); len(errs) != 0 {
		t.Fatalf("refused with the Secret present: %v", errs)
	}
	errs := CheckSecrets(objs, Secrets{"y/header-match": {"value": []byte("v")}})
	if len(errs) != 1 {
		t.Fatalf("errors = %v, want one (the fallback match is fine)", errs)
	}
	want := "pol.yaml:1: spec.egress[0].toPorts[0].rules.http[0].headerMatches[0].secret: CiliumNetworkPolicy/x/p: Secret x/header-match does not exist"
	if got := errs[0].Error(); got != want {
		t.Errorf("error = %q\nwant    %q", got, want)
	}
	errs = CheckSecrets(objs, Secrets{"x/header-match": {"a": []byte("1"), "b": []byte("2")}})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "exactly one data entry") {
		t.Errorf("a two-entry Secret: %v", errs)
	}
}
