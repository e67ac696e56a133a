package policy

import (
	"strings"
	"testing"
)

func TestParseRefusesBadInputNamingFieldPathAndFile(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"an unknown field is named by its full path", cnpHeader +
			"spec:\n  endpointSelector: {}\n  ingress:\n  - fromEndpoints: [{}, {matchLabel: {a: b}}]\n",
			"f.yaml:7: spec.ingress[0].fromEndpoints[1].matchLabel: unknown field"},
		{"an error points at the line of the field it names", "---\n" + knpHeader +
			"spec:\n  podSelector: {}\n  ingress:\n  - from:\n    - podSelector: {}\n    - ipBlock:\n        cidr: 10.0.0.0/33\n",
			"f.yaml:11: spec.ingress[0].from[1].ipBlock.cidr: invalid CIDR"},
		{"an invalid CIDR is refused", cnpHeader + "spec: {endpointSelector: {}, egress: [{toCIDR: [10.0.0.300/8]}]}",
			"spec.egress[0].toCIDR[0]: invalid CIDR"},
		{"an invalid protocol is refused", cnpHeader + "spec: {endpointSelector: {}, egress: [{toPorts: [{ports: [{port: '80', protocol: XTP}]}]}]}",
			"spec.egress[0].toPorts[0].ports[0].protocol: invalid protocol"},
		{"an out-of-range port is refused", knpHeader + "spec: {podSelector: {}, ingress: [{ports: [{port: 70000}]}]}",
			"spec.ingress[0].ports[0].port: 70000 is out of range"},
		{"an invalid label key is refused", cnpHeader + "spec: {endpointSelector: {matchLabels: {'bad key': x}}}",
			"f.yaml:4: spec.endpointSelector.matchLabels.bad key: invalid label key"},
		{"a CIDRSet entry with both cidr and cidrGroupRef is refused", cnpHeader + "spec: {endpointSelector: {}, egress: [{toCIDRSet: [{cidr: 10.0.0.0/8, cidrGroupRef: g}]}]}",
			"spec.egress[0].toCIDRSet[0]: exactly one of cidr, cidrGroupRef and cidrGroupSelector is required"},
		{"a CiliumCIDRGroup with a bad CIDR names the field", "apiVersion: cilium.io/v2alpha1\nkind: CiliumCIDRGroup\nmetadata: {name: g}\nspec:\n  externalCIDRs:\n  - 192.0.2.0/24\n  - 198.51.100.7\n",
			"f.yaml:7: spec.externalCIDRs[1]: invalid CIDR"},
		{"a CiliumCIDRGroup without externalCIDRs is refused", "apiVersion: cilium.io/v2\nkind: CiliumCIDRGroup\nmetadata: {name: g}\nspec: {}\n",
			"spec.externalCIDRs: required"},
		{"a CiliumCIDRGroup with an unknown field is refused", "apiVersion: cilium.io/v2\nkind: CiliumCIDRGroup\nmetadata: {name: g}\nspec: {externalCIDRs: [], cidrs: []}\n",
			"spec.cidrs: unknown field"},
		{"an unknown entity is refused", cnpHeader + "spec: {endpointSelector: {}, egress: [{toEntities: [moon]}]}",
			`unknown entity "moon"`},
		{"template placeholders are refused", cnpHeader + "spec: {endpointSelector: {}, egress: [{toCIDR: [{{.IP}}]}]}",
			"Go template placeholders"},
		{"a document without kind is refused", "a: b\n", "f.yaml:1: kind: missing"},
		{"a value of the wrong type is named by its path", cnpHeader + "spec:\n  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports: {port: 80}\n",
			"f.yaml:8: spec.egress[0].toPorts[0].ports: expected a list, got object"},
		{"a port that is neither a number nor a name is refused", cnpHeader + "spec: {endpointSelector: {}, egress: [{toPorts: [{ports: [{port: [80]}]}]}]}",
			`spec.egress[0].toPorts[0].ports[0].port: invalid port name "[80]"`},
		{"a duplicate JSON field is refused by the decoder", `{"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy","metadata":{"name":"n"},"spec":{"endpointSelector":{}},"spec":{}}`,
			"f.yaml:1: spec: duplicate field"},
		{"a field brought by a merge key is checked where it is written", "x: &common {endpointSelector: {}, ingres: []}\n" + cnpHeader + "spec:\n  <<: *common\n",
			"f.yaml:1: spec.ingres: unknown field"},
		{"DNS rules on ingress are refused, as Cilium refuses them", cnpHeader + "spec:\n  endpointSelector: {}\n  ingress:\n  - toPorts:\n    - ports: [{port: '53', protocol: UDP}]\n      rules:\n        dns: [{matchPattern: '*'}]\n",
			"f.yaml:10: spec.ingress[0].toPorts[0].rules.dns: DNS rules are not allowed on ingress"},
		{"an except outside the cidr is refused", knpHeader + "spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/8]}}]}]}",
			"except[0]: 11.0.0.0/8 is not inside 10.0.0.0/8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseYAML([]byte(tc.doc), "f.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestAFileWithOneBadDocumentYieldsNoObjects(t *testing.T) {
	doc := knpHeader + "spec: {podSelector: {}}\n---\n" + knpHeader + "spec: {podSelector: {}, ingress: [{ports: [{port: 0}]}]}\n"
	objs, err := ParseYAML([]byte(doc), "f.yaml")
	if objs != nil || err == nil || !strings.Contains(err.Error(), "f.yaml:9: spec.ingress[0].ports[0].port: 0 is out of range") {
		t.Fatalf("objects %v, error %v; want none and the second document's error", objs, err)
	}
}

func TestParseReturnsPoliciesAndSkippedKindsFromAllDocuments(t *testing.T) {
	doc := knpHeader + "spec: {podSelector: {}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\n" +
		"apiVersion: v1\nkind: List\nitems:\n- " + strings.ReplaceAll(strings.TrimSpace(ccnpHeader+"spec: {endpointSelector: {}}"), "\n", "\n  ") + "\n"
	objs, err := ParseYAML([]byte(doc), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		s := o.String()
		if o.Skipped {
			s = "skipped " + s
		}
		got = append(got, s)
	}
	want := "NetworkPolicy/x/p;skipped Deployment/d;CiliumClusterwideNetworkPolicy/p"
	if strings.Join(got, ";") != want {
		t.Fatalf("objects %v, want %s", got, want)
	}
	if objs[1].Source.Line != 6 {
		t.Fatalf("second document line = %d, want 6", objs[1].Source.Line)
	}
}

func TestParseReadsTheOlderJSONArrayOfRules(t *testing.T) {
	objs, err := ParseYAML([]byte(`[{"labels": [{"key": "name", "value": "r1"}], "endpointSelector": {"matchLabels": {"app": "a"}}, "ingress": [{}]}]`), "f.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Kind != KindCiliumRules || objs[0].Name != "r1" {
		t.Fatalf("objects = %+v", objs)
	}
}

func TestParseJSONObjectParsesOneObject(t *testing.T) {
	o, err := ParseJSONObject([]byte(`{"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy","metadata":{"name":"n"},"spec":{"endpointSelector":{}}}`), "api")
	if err != nil {
		t.Fatal(err)
	}
	if o.Namespace != "default" || o.Cilium == nil {
		t.Fatalf("object = %+v", o)
	}
}
