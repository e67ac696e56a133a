package sim

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/kestrelnet/kestrel/scenarios/engine"
)

// An ipBlock naming a scenario pod (a /32, or its address in an except list)
// names the live pod after the mapping; wider CIDRs and other addresses stay.
func TestManifestsNameTheLivePods(t *testing.T) {
	m := addrMap{
		netip.MustParseAddr("10.244.0.14"): netip.MustParseAddr("10.244.1.7"),
		netip.MustParseAddr("fd00::e"):     netip.MustParseAddr("fd00:1::7"),
	}
	in := engine.Manifest{Source: "s.yaml:3", JSON: []byte(`{"kind":"NetworkPolicy","spec":{"egress":[{"to":[
		{"ipBlock":{"cidr":"10.244.0.14/32"}},
		{"ipBlock":{"cidr":"10.244.0.10/4","except":["10.244.0.14/32","10.244.0.15/32"]}},
		{"ipBlock":{"cidr":"fd00::e/128"}}]}],"podSelector":{"matchLabels":{"pod":"10.244.0.14"}}}}`)}
	slice := engine.Manifest{Source: "s.yaml:9", JSON: []byte(`{"kind":"EndpointSlice","endpoints":[{"addresses":["10.244.0.14"]}]}`)}
	out, err := m.manifests([]engine.Manifest{in, slice})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Spec struct {
			Egress []struct {
				To []struct {
					IPBlock struct {
						CIDR   string   `json:"cidr"`
						Except []string `json:"except"`
					} `json:"ipBlock"`
				} `json:"to"`
			} `json:"egress"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(out[0].JSON, &got); err != nil {
		t.Fatal(err)
	}
	to := got.Spec.Egress[0].To
	if to[0].IPBlock.CIDR != "10.244.1.7/32" {
		t.Errorf("a pod's /32 became %s, want the live pod's", to[0].IPBlock.CIDR)
	}
	if to[1].IPBlock.CIDR != "10.244.0.10/4" {
		t.Errorf("a wide CIDR became %s, want it as written", to[1].IPBlock.CIDR)
	}
	if e := to[1].IPBlock.Except; len(e) != 2 || e[0] != "10.244.1.7/32" || e[1] != "10.244.0.15/32" {
		t.Errorf("except = %v, want the mapped pod's /32 and the unmapped one as written", e)
	}
	if to[2].IPBlock.CIDR != "fd00:1::7/128" {
		t.Errorf("an IPv6 pod's /128 became %s", to[2].IPBlock.CIDR)
	}
	var label struct {
		Spec struct {
			PodSelector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"podSelector"`
		} `json:"spec"`
	}
	json.Unmarshal(out[0].JSON, &label)
	if v := label.Spec.PodSelector.MatchLabels["pod"]; v != "10.244.0.14" {
		t.Errorf("a label value that looks like a pod address became %q", v)
	}
	if want := `{"endpoints":[{"addresses":["10.244.1.7"]}],"kind":"EndpointSlice"}`; string(out[1].JSON) != want {
		t.Errorf("EndpointSlice = %s, want %s", out[1].JSON, want)
	}
	if m.scenario(netip.MustParseAddr("10.244.1.7")) != netip.MustParseAddr("10.244.0.14") {
		t.Error("the live address does not map back to the scenario's")
	}
	if in.Source != out[0].Source {
		t.Error("the manifest lost its source (errors name it)")
	}
}
