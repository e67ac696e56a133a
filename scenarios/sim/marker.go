package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// After every Sync the runner writes one marker object in each watch stream
// that feeds an agent's policy (namespaces, pods, the three policy kinds and
// the CIDR groups policies name).
// Streams are not ordered with respect to each other, so one marker is not
// enough: a namespace event may reach an agent before an earlier policy
// deletion does. An agent reports as its policy revision the lowest of its
// streams' revisions; once that is at or past the first marker's version,
// every stream has delivered a marker, and with it everything written before.
//
// The markers live in their own namespace and select nothing: the pod is
// never scheduled, the policies select a label no pod carries. Like the
// scenarios' objects, they go when the runner closes (clear).
const (
	markerNamespace  = "kestrel-sim"
	markerName       = "sync-marker"
	markerAnnotation = "kestrel.dev/sync"
	markerLabel      = "kestrel.dev/sync-marker" // selected by the marker policies, carried by no pod
	// markerScheduler names no scheduler, so the marker pod stays Pending.
	markerScheduler = "kestrel.dev/no-scheduler"
)

var (
	namespacesResource = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	podsResource       = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

type marker struct {
	gvr        schema.GroupVersionResource
	namespaced bool
	object     map[string]any // created from this when missing; nil when it must exist
}

func markers() []marker {
	selectNothing := map[string]any{"matchLabels": map[string]any{markerLabel: "none"}}
	meta := func(namespaced bool) map[string]any {
		m := map[string]any{"name": markerName, "annotations": map[string]any{managedAnnotation: "true"}}
		if namespaced {
			m["namespace"] = markerNamespace
		}
		return m
	}
	cilium := func(kind string, namespaced bool) marker {
		return marker{gvr: resources[kind], namespaced: namespaced, object: map[string]any{
			"apiVersion": "cilium.io/v2", "kind": kind, "metadata": meta(namespaced),
			"spec": map[string]any{
				"endpointSelector": selectNothing,
				"ingress":          []any{map[string]any{"fromEndpoints": []any{selectNothing}}},
			},
		}}
	}
	return []marker{
		{gvr: namespacesResource}, // made by bumpMarkers through ensureNamespace
		{gvr: podsResource, namespaced: true, object: map[string]any{
			"apiVersion": "v1", "kind": "Pod", "metadata": meta(true),
			"spec": map[string]any{
				"schedulerName": markerScheduler,
				"containers":    []any{map[string]any{"name": "marker", "image": "kestrel.dev/none"}},
			},
		}},
		{gvr: resources["NetworkPolicy"], namespaced: true, object: map[string]any{
			"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta(true),
			"spec": map[string]any{"podSelector": selectNothing, "policyTypes": []any{"Ingress"}},
		}},
		cilium("CiliumNetworkPolicy", true),
		cilium("CiliumClusterwideNetworkPolicy", false),
		// Secrets feed policy too (headerMatches values).
		{gvr: resources["Secret"], namespaced: true, object: map[string]any{
			"apiVersion": "v1", "kind": "Secret", "metadata": meta(true),
		}},
		{gvr: resources["CiliumCIDRGroup"], object: map[string]any{
			"apiVersion": "cilium.io/v2", "kind": "CiliumCIDRGroup", "metadata": meta(false),
			"spec": map[string]any{"externalCIDRs": []any{}},
		}},
	}
}

// bumpMarkers writes every marker and returns the first one's
// resourceVersion: every earlier write has a lower one, and every marker a
// version at or above it.
func (r *Runner) bumpMarkers(ctx context.Context) (uint64, error) {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": map[string]any{markerAnnotation: strconv.FormatInt(time.Now().UnixNano(), 10)}}})
	if err != nil {
		return 0, err
	}
	// Made like a scenario's namespace: waited for if an earlier run's
	// cleanup is still deleting it, and deleted by clear.
	if err := r.ensureNamespace(ctx, markerNamespace, nil); err != nil {
		return 0, fmt.Errorf("sync marker: %w", err)
	}
	var first uint64
	for i, m := range markers() {
		rv, err := r.bumpMarker(ctx, m, patch)
		if err != nil {
			return 0, fmt.Errorf("sync marker %s: %w", m.gvr.Resource, err)
		}
		if i == 0 {
			first = rv
		}
	}
	return first, nil
}

func (r *Runner) bumpMarker(ctx context.Context, m marker, patch []byte) (uint64, error) {
	key := manifestKey{gvr: m.gvr, name: markerName}
	if m.gvr == namespacesResource {
		key.name = markerNamespace
	}
	if m.namespaced {
		key.namespace = markerNamespace
	}
	res := r.resource(key)
	obj, err := res.Patch(ctx, key.name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) && m.object != nil {
		u := &unstructured.Unstructured{Object: m.object}
		obj, err = res.Create(ctx, u, metav1.CreateOptions{})
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(obj.GetResourceVersion(), 10, 64)
}

// deleteClusterMarker removes the markers that are not inside the marker
// namespace (the CCNP and the CIDR group); deleting the namespace takes the others.
func (r *Runner) deleteClusterMarker(ctx context.Context) error {
	for _, kind := range []string{"CiliumClusterwideNetworkPolicy", "CiliumCIDRGroup"} {
		err := r.dyn.Resource(resources[kind]).Delete(ctx, markerName, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete sync marker: %w", err)
		}
	}
	return nil
}
