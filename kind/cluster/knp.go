package cluster

import (
	"context"
	_ "embed"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/kestrelnet/kestrel/install"
)

// The NetworkPolicy implementations `kind up --network-policy` installs.
const (
	PolicyNone = ""
	PolicyKNP  = "kube-network-policies"
)

//go:embed knp.yaml
var knpManifests string

// knpObjects are kube-network-policies' objects, running image.
func knpObjects(image string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for i, doc := range strings.Split(knpManifests, "\n---\n") {
		obj := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return nil, fmt.Errorf("knp.yaml: document %d: %w", i+1, err)
		}
		if len(obj) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if u.GetKind() == "DaemonSet" {
			cs, _, _ := unstructured.NestedSlice(obj, "spec", "template", "spec", "containers")
			if len(cs) != 1 {
				return nil, fmt.Errorf("knp.yaml: the DaemonSet has %d containers, want 1", len(cs))
			}
			cs[0].(map[string]any)["image"] = image
			if err := unstructured.SetNestedSlice(obj, cs, "spec", "template", "spec", "containers"); err != nil {
				return nil, err
			}
		}
		out = append(out, u)
	}
	return out, nil
}

// installKNP applies kube-network-policies and waits until it runs on every node.
func installKNP(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, image string, wait time.Duration) error {
	objs, err := knpObjects(image)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := install.Apply(ctx, dyn, o); err != nil {
			return fmt.Errorf("install kube-network-policies: %w", err)
		}
	}
	return install.WaitDaemonSet(ctx, cs, "kube-system", "kube-network-policies", wait)
}
