package controlplane

import (
	"os"
	"regexp"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestCRDsServeCiliumKindsUnderTheirShortNames(t *testing.T) {
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		scope, short string
	}{
		"ciliumnetworkpolicies.cilium.io":            {"Namespaced", "cnp"},
		"ciliumclusterwidenetworkpolicies.cilium.io": {"Cluster", "ccnp"},
		"ciliumcidrgroups.cilium.io":                 {"Cluster", "ccg"},
	}
	if len(crds) != len(want) {
		t.Fatalf("got %d CRDs, want %d", len(crds), len(want))
	}
	for _, crd := range crds {
		w, ok := want[crd.GetName()]
		if !ok {
			t.Errorf("unexpected CRD %s", crd.GetName())
			continue
		}
		scope, _, _ := unstructured.NestedString(crd.Object, "spec", "scope")
		short, _, _ := unstructured.NestedStringSlice(crd.Object, "spec", "names", "shortNames")
		if scope != w.scope || !slices.Contains(short, w.short) {
			t.Errorf("%s: scope %s, short names %v; want %s and %s", crd.GetName(), scope, short, w.scope, w.short)
		}
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		schema, _, _ := unstructured.NestedMap(versions[0].(map[string]any), "schema", "openAPIV3Schema", "properties")
		if crd.GetName() == "ciliumcidrgroups.cilium.io" {
			// Served as v2 (stored) and v2alpha1, as upstream.
			var served []string
			for _, v := range versions {
				if ok, _, _ := unstructured.NestedBool(v.(map[string]any), "served"); ok {
					name, _, _ := unstructured.NestedString(v.(map[string]any), "name")
					served = append(served, name)
				}
			}
			if !slices.Equal(served, []string{"v2", "v2alpha1"}) {
				t.Errorf("%s: serves %v, want v2 and v2alpha1", crd.GetName(), served)
			}
			if keep, _, _ := unstructured.NestedBool(schema, "spec", "x-kubernetes-preserve-unknown-fields"); !keep {
				t.Errorf("%s: spec does not preserve unknown fields", crd.GetName())
			}
			continue
		}
		for _, field := range []string{"spec", "status"} {
			if keep, _, _ := unstructured.NestedBool(schema, field, "x-kubernetes-preserve-unknown-fields"); !keep {
				t.Errorf("%s: %s does not preserve unknown fields", crd.GetName(), field)
			}
		}
		if keep, _, _ := unstructured.NestedBool(schema, "specs", "items", "x-kubernetes-preserve-unknown-fields"); !keep {
			t.Errorf("%s: specs[] does not preserve unknown fields", crd.GetName())
		}
	}
}

func TestKubernetesVersionIsTheOneTheBuildPins(t *testing.T) {
	mod, err := os.ReadFile("k8s/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^require k8s\.io/kubernetes (\S+)$`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("k8s/go.mod: no `require k8s.io/kubernetes` line")
	}
	if string(m[1]) != KubernetesVersion {
		t.Errorf("k8s/go.mod pins %s, KubernetesVersion is %s", m[1], KubernetesVersion)
	}
}
