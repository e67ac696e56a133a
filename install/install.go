// Package install applies Kestrel to a cluster the way a user installs a CNI: the
// CRDs, RBAC and the agent DaemonSet, from manifests embedded in (and so versioned
// with) the binary; Uninstall removes them and cleans every node.
package install

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"text/template"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/kestrelnet/kestrel/sim/controlplane"
)

//go:embed manifests/*.yaml cleanup.yaml
var files embed.FS

// Params fill the manifests' templates.
type Params struct {
	Namespace     string // kube-system
	Image         string // the agent image (kestrel kind image builds kestrel/agent:<hash>)
	PauseImage    string // the cleanup DaemonSet's idle container
	ClusterName   string // in pod identities
	ServiceCIDR   string // the cluster's service range(s), comma-separated
	APIServerHost string // how agents reach the API without the kubernetes Service (which Kestrel serves); empty: the Service
	APIServerPort string //
	HealthPort    int    // /healthz (readiness) and /livez (liveness)
	// APIPort serves the agent API's GET requests on the node's loopback
	// (--api-listen-address=127.0.0.1:APIPort), which `kestrel scenario
	// run --mode cluster` reads through a port-forward; 0: off.
	APIPort    int
	NodeRoutes bool     // --auto-direct-node-routes (nodes share one L2 network)
	ExtraArgs  []string // more agent flags
	// SocketLBCgroup, a cgroup v2 directory on the node holding every process
	// of the node (pods included), turns on socket LB there (--bpf-lb-sock,
	// the directory mounted as --cgroup-root); empty: off.
	SocketLBCgroup string
}

// Defaults are the values for a kind cluster made by `kestrel kind up`.
func Defaults() Params {
	return Params{Namespace: "kube-system", PauseImage: "registry.k8s.io/pause:3.10", ClusterName: "default",
		ServiceCIDR: "10.96.0.0/16", APIServerPort: "6443", HealthPort: 10256, APIPort: 9890}
}

// FieldManager owns what Install applies (server-side apply).
const FieldManager = "kestrel-install"

// Objects renders the manifests: CRDs first, then the files in name order.
func Objects(p Params) ([]*unstructured.Unstructured, error) {
	if p.Image == "" {
		return nil, fmt.Errorf("no agent image")
	}
	objs, err := controlplane.CRDs()
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(files, "manifests/*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, n := range names {
		o, err := render(n, p)
		if err != nil {
			return nil, err
		}
		objs = append(objs, o...)
	}
	return objs, nil
}

func render(name string, p Params) ([]*unstructured.Unstructured, error) {
	raw, err := files.ReadFile(name)
	if err != nil {
		return nil, err
	}
	t, err := template.New(name).Option("missingkey=error").Parse(string(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var out []*unstructured.Unstructured
	for i, doc := range strings.Split(buf.String(), "\n---\n") {
		obj := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i+1, err)
		}
		if len(obj) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
	return out, nil
}

// resources maps the kinds the manifests use to their resources.
var resources = map[string]schema.GroupVersionResource{
	"CustomResourceDefinition": {Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"},
	"ServiceAccount":           {Version: "v1", Resource: "serviceaccounts"},
	"ClusterRole":              {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
	"ClusterRoleBinding":       {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
	"DaemonSet":                {Group: "apps", Version: "v1", Resource: "daemonsets"},
}

func resourceFor(dyn dynamic.Interface, o *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvr, ok := resources[o.GetKind()]
	if !ok {
		return nil, fmt.Errorf("%s %s: kind not handled by install", o.GetKind(), o.GetName())
	}
	if o.GetNamespace() != "" {
		return dyn.Resource(gvr).Namespace(o.GetNamespace()), nil
	}
	return dyn.Resource(gvr), nil
}

// Install applies every object (server-side apply, so a second install updates in
// place) and, if wait > 0, waits until the agent runs Ready on every node.
func Install(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, p Params, wait time.Duration) error {
	objs, err := Objects(p)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := apply(ctx, dyn, o); err != nil {
			return err
		}
	}
	if wait <= 0 {
		return nil
	}
	return WaitDaemonSet(ctx, cs, p.Namespace, "kestrel-agent", wait)
}

// Apply server-side-applies one object of a kind Install handles (the kind
// provider installs kube-network-policies with it too).
func Apply(ctx context.Context, dyn dynamic.Interface, o *unstructured.Unstructured) error {
	return apply(ctx, dyn, o)
}

func apply(ctx context.Context, dyn dynamic.Interface, o *unstructured.Unstructured) error {
	ri, err := resourceFor(dyn, o)
	if err != nil {
		return err
	}
	data, err := json.Marshal(o.Object)
	if err != nil {
		return err
	}
	force := true
	if _, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: FieldManager, Force: &force}); err != nil {
		return fmt.Errorf("apply %s %s: %w", o.GetKind(), o.GetName(), err)
	}
	return nil
}

// WaitDaemonSet waits until every scheduled pod of the DaemonSet is updated and Ready.
func WaitDaemonSet(ctx context.Context, cs kubernetes.Interface, ns, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ds, err := cs.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			if dsReady(ds) {
				return nil
			}
			last = fmt.Sprintf("%d/%d ready, %d updated", ds.Status.NumberReady, ds.Status.DesiredNumberScheduled, ds.Status.UpdatedNumberScheduled)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("daemonset %s/%s not ready after %s: %s", ns, name, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func dsReady(ds *appsv1.DaemonSet) bool {
	s := ds.Status
	return s.ObservedGeneration >= ds.Generation && s.DesiredNumberScheduled > 0 &&
		s.NumberReady == s.DesiredNumberScheduled && s.UpdatedNumberScheduled == s.DesiredNumberScheduled
}

// Uninstall deletes the agent DaemonSet, waits until its pods are gone, runs the
// cleanup DaemonSet on every node until each is done, deletes it, then deletes
// RBAC and (unless keepCRDs) the CRDs with the policies in them.
func Uninstall(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, p Params, keepCRDs bool, timeout time.Duration) error {
	if p.Image == "" {
		// The cleanup runs the installed agent's image, which every node has.
		ds, err := cs.AppsV1().DaemonSets(p.Namespace).Get(ctx, "kestrel-agent", metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("no --image, and the agent DaemonSet names none: %w", err)
		}
		p.Image = ds.Spec.Template.Spec.Containers[0].Image
	}
	objs, err := Objects(p)
	if err != nil {
		return err
	}
	fg := metav1.DeletePropagationForeground
	if err := cs.AppsV1().DaemonSets(p.Namespace).Delete(ctx, "kestrel-agent", metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err := waitGone(ctx, cs, p.Namespace, "app.kubernetes.io/name=kestrel-agent", timeout); err != nil {
		return err
	}
	cleanup, err := render("cleanup.yaml", p)
	if err != nil {
		return err
	}
	for _, o := range cleanup {
		if err := apply(ctx, dyn, o); err != nil {
			return err
		}
	}
	if err := WaitDaemonSet(ctx, cs, p.Namespace, "kestrel-cleanup", timeout); err != nil {
		return fmt.Errorf("node cleanup: %w", err)
	}
	if err := cs.AppsV1().DaemonSets(p.Namespace).Delete(ctx, "kestrel-cleanup", metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	for i := len(objs) - 1; i >= 0; i-- {
		o := objs[i]
		if o.GetKind() == "DaemonSet" || (keepCRDs && o.GetKind() == "CustomResourceDefinition") {
			continue
		}
		ri, err := resourceFor(dyn, o)
		if err != nil {
			return err
		}
		if err := ri.Delete(ctx, o.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return waitGone(ctx, cs, p.Namespace, "app.kubernetes.io/name=kestrel-cleanup", timeout)
}

func waitGone(ctx context.Context, cs kubernetes.Interface, ns, selector string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err == nil && len(pods.Items) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			n := 0
			if pods != nil {
				n = len(pods.Items)
			}
			return fmt.Errorf("%d pods %s in %s still there after %s (err %v)", n, selector, ns, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
