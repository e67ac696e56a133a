package sim

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kestrelnet/kestrel/scenarios/engine"
)

// A Service the scenario writes EndpointSlices for loses its selector in sim,
// so the cluster's EndpointSlice controller derives none; other Services and
// every other field stay as written.
func TestAServiceWithWrittenSlicesLosesOnlyItsSelector(t *testing.T) {
	ms := []engine.Manifest{
		{Kind: "Service", Namespace: "x", Name: "web", Source: "s.yaml:1", JSON: []byte(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"x"},"spec":{"selector":{"app":"web"},"clusterIP":"10.96.0.20","ports":[{"port":80}]}}`)},
		{Kind: "Service", Namespace: "x", Name: "api", Source: "s.yaml:2", JSON: []byte(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"api","namespace":"x"},"spec":{"selector":{"app":"api"}}}`)},
		{Kind: "EndpointSlice", Namespace: "x", Name: "web-1", Source: "s.yaml:3", JSON: []byte(`{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"web-1","namespace":"x","labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv4","endpoints":[]}`)},
	}
	out, err := withoutDerivedSlices(ms)
	if err != nil {
		t.Fatal(err)
	}
	var web, api struct {
		Spec map[string]any `json:"spec"`
	}
	json.Unmarshal(out[0].JSON, &web)
	json.Unmarshal(out[1].JSON, &api)
	if _, ok := web.Spec["selector"]; ok || web.Spec["clusterIP"] != "10.96.0.20" || web.Spec["ports"] == nil {
		t.Errorf("web: %v; want everything but the selector", web.Spec)
	}
	if api.Spec["selector"] == nil {
		t.Errorf("api has no written slices and keeps its selector: %v", api.Spec)
	}
	if string(out[2].JSON) != string(ms[2].JSON) {
		t.Error("the slice changed")
	}
	var orig struct {
		Spec map[string]any `json:"spec"`
	}
	json.Unmarshal(ms[0].JSON, &orig)
	if orig.Spec["selector"] == nil {
		t.Error("the scenario's own manifest lost its selector")
	}
}

// A pod whose image cannot be pulled fails the Sync at once, naming the image,
// instead of after the ready timeout of every scenario.
func TestAPodWithoutItsImageIsStuck(t *testing.T) {
	p := &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
		Name: "c", Image: "kestrel/workload:abc",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}},
	}}}}
	if why := podStuck(p); !strings.Contains(why, "kestrel/workload:abc") || !strings.Contains(why, "ImagePullBackOff") {
		t.Errorf("podStuck = %q, want the image and the reason", why)
	}
	p.Status.ContainerStatuses[0].State.Waiting.Reason = "ContainerCreating"
	if why := podStuck(p); why != "" {
		t.Errorf("a creating container is stuck: %q", why)
	}
}
