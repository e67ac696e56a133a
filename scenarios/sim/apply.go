package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kestrelnet/kestrel/scenarios/engine"
)

// ipAnnotation asks the CNI's IPAM for a given address (sim/README.md).
const ipAnnotation = "kestrel.dev/ip"

// resources maps the kinds scenarios use to their API resources.
var resources = map[string]schema.GroupVersionResource{
	"NetworkPolicy":                  {Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"},
	"CiliumNetworkPolicy":            {Group: "cilium.io", Version: "v2", Resource: "ciliumnetworkpolicies"},
	"CiliumClusterwideNetworkPolicy": {Group: "cilium.io", Version: "v2", Resource: "ciliumclusterwidenetworkpolicies"},
	"CiliumCIDRGroup":                {Group: "cilium.io", Version: "v2", Resource: "ciliumcidrgroups"},
	"Service":                        {Version: "v1", Resource: "services"},
	"ServiceAccount":                 {Version: "v1", Resource: "serviceaccounts"},
	"Secret":                         {Version: "v1", Resource: "secrets"},
	"EndpointSlice":                  {Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"},
}

var clusterScoped = map[string]bool{"CiliumClusterwideNetworkPolicy": true, "CiliumCIDRGroup": true}

// manifestGVR is the kind's resource at the version the manifest names
// (CiliumCIDRGroup is written as cilium.io/v2alpha1 or v2): the API server
// refuses an object whose apiVersion is not the one it is sent to.
func manifestGVR(m engine.Manifest) (schema.GroupVersionResource, bool) {
	gvr, ok := resources[m.Kind]
	if !ok {
		return gvr, false
	}
	if group, version, found := strings.Cut(m.APIVersion, "/"); found && group == gvr.Group {
		gvr.Version = version
	}
	return gvr, true
}

// apply makes the cluster's managed objects equal to c: namespaces first,
// then service accounts (the API server refuses a pod whose service account
// does not exist), then pods, then the other manifests; it deletes managed
// manifests and pods that c no longer has. Namespaces are kept until the
// runner closes.
func (r *Runner) apply(ctx context.Context, c *engine.Cluster) error {
	if err := r.applyWorkloads(ctx, c); err != nil {
		return err
	}
	return r.applyManifests(ctx, c.Manifests)
}

// applyWorkloads is apply's first part: namespaces, service accounts, pods.
func (r *Runner) applyWorkloads(ctx context.Context, c *engine.Cluster) error {
	for _, ns := range c.Namespaces {
		if err := r.ensureNamespace(ctx, ns.Name, ns.Labels); err != nil {
			return err
		}
	}
	for _, m := range c.Manifests {
		if m.Kind != "ServiceAccount" {
			continue
		}
		ns := m.Namespace
		if ns == "" {
			ns = "default"
		}
		gvr, _ := manifestGVR(m)
		if err := r.upsert(ctx, manifestKey{gvr: gvr, namespace: ns, name: m.Name}, m); err != nil {
			return err
		}
	}
	want := map[string]*corev1.Pod{}
	for _, p := range c.Pods {
		want[p.Namespace+"/"+p.Name] = p
	}
	for key := range r.live.pods {
		if p, ok := want[key]; !ok || podFingerprint(p) != r.live.pods[key].fingerprint {
			if err := r.deletePod(ctx, key); err != nil {
				return err
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(want)) {
		if err := r.ensurePod(ctx, want[key]); err != nil {
			return err
		}
	}
	return nil
}

func (r *Runner) ensureNamespace(ctx context.Context, name string, labels map[string]string) error {
	if old, ok := r.live.namespaces[name]; ok && maps.Equal(old, labels) {
		return nil
	}
	nsc := r.kube.CoreV1().Namespaces()
	ns, err := nsc.Get(ctx, name, metav1.GetOptions{})
	if err == nil && ns.Status.Phase == corev1.NamespaceTerminating {
		// Left by an earlier run's cleanup: nothing can be created in it.
		if err := r.waitGone(ctx, func() error {
			_, err := nsc.Get(ctx, name, metav1.GetOptions{})
			return err
		}, "terminating namespace "+name); err != nil {
			return err
		}
		ns, err = nil, apierrors.NewNotFound(corev1.Resource("namespaces"), name)
	}
	switch {
	case apierrors.IsNotFound(err):
		ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels,
			Annotations: map[string]string{managedAnnotation: "true"}}}
		if _, err := nsc.Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create namespace %s: %w", name, err)
		}
	case err != nil:
		return fmt.Errorf("get namespace %s: %w", name, err)
	default:
		ns.Labels = labels
		if _, err := nsc.Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("label namespace %s: %w", name, err)
		}
	}
	r.live.namespaces[name] = maps.Clone(labels)
	return nil
}

// podFingerprint is what cannot change on a running pod.
func podFingerprint(p *corev1.Pod) string {
	var ports []string
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			ports = append(ports, fmt.Sprintf("%s:%d/%s", cp.Name, cp.ContainerPort, cp.Protocol))
		}
	}
	return strings.Join([]string{p.Spec.NodeName, podIPList(p), p.Spec.ServiceAccountName, strings.Join(ports, ",")}, "|")
}

func (r *Runner) ensurePod(ctx context.Context, want *corev1.Pod) error {
	key := want.Namespace + "/" + want.Name
	pc := r.kube.CoreV1().Pods(want.Namespace)
	if live, ok := r.live.pods[key]; ok {
		if maps.Equal(live.labels, want.Labels) {
			return nil
		}
		pod, err := pc.Get(ctx, want.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get pod %s: %w", key, err)
		}
		pod.Labels = want.Labels
		if _, err := pc.Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("label pod %s: %w", key, err)
		}
		live.labels = maps.Clone(want.Labels)
		r.live.pods[key] = live
		return nil
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: want.Namespace, Labels: want.Labels,
			Annotations: map[string]string{managedAnnotation: "true"}},
		Spec: corev1.PodSpec{
			NodeName:                      want.Spec.NodeName,
			ServiceAccountName:            want.Spec.ServiceAccountName,
			Containers:                    r.backend.Containers(want),
			TerminationGracePeriodSeconds: new(int64),
		},
	}
	if _, live := r.backend.(PodExec); !live {
		if ips := podIPList(want); ips != "" {
			pod.Annotations[ipAnnotation] = ips
		}
	}
	if _, err := pc.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create pod %s: %w", key, err)
	}
	r.live.pods[key] = livePod{fingerprint: podFingerprint(want), labels: maps.Clone(want.Labels)}
	return nil
}

// scenarioContainers are a scenario pod's containers as sim runs them: the
// built-in servers answer on the declared ports whatever the image, so a
// command, arguments and probes copied from a real manifest are dropped
// (sim's kubelet runs a container's command when it has one, and probes
// written for the real image would keep the pod from being Ready).
func scenarioContainers(cs []corev1.Container) []corev1.Container {
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i] = corev1.Container{Name: c.Name, Image: c.Image, Ports: c.Ports, Env: c.Env}
		if out[i].Image == "" {
			out[i].Image = "kestrel.dev/sim-workload"
		}
	}
	return out
}

func (r *Runner) deletePod(ctx context.Context, key string) error {
	ns, name, _ := strings.Cut(key, "/")
	err := r.kube.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete pod %s: %w", key, err)
	}
	delete(r.live.pods, key)
	// A new pod of the same name must not meet the old one's address or netns.
	return r.waitGone(ctx, func() error {
		_, err := r.kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return err
	}, "pod "+key)
}

func (r *Runner) waitGone(ctx context.Context, get func() error, what string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := get()
		if apierrors.IsNotFound(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is still there after 60s", what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r *Runner) applyManifests(ctx context.Context, ms []engine.Manifest) error {
	want := map[manifestKey]engine.Manifest{}
	ms, err := withoutDerivedSlices(ms)
	if err != nil {
		return err
	}
	for _, m := range ms {
		gvr, ok := manifestGVR(m)
		if !ok {
			return fmt.Errorf("%s: kind %s is not supported in sim mode yet", m.Source, m.Kind)
		}
		ns := m.Namespace
		if clusterScoped[m.Kind] {
			ns = ""
		} else if ns == "" {
			ns = "default"
		}
		want[manifestKey{gvr: gvr, namespace: ns, name: m.Name}] = m
	}
	for key := range r.live.manifests {
		if _, ok := want[key]; !ok {
			if err := r.resource(key).Delete(ctx, key.name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete %s %s/%s: %w", key.gvr.Resource, key.namespace, key.name, err)
			}
			delete(r.live.manifests, key)
		}
	}
	for key, m := range want {
		if err := r.upsert(ctx, key, m); err != nil {
			return err
		}
	}
	return nil
}

// upsert creates or updates one managed manifest unless it is live as is.
func (r *Runner) upsert(ctx context.Context, key manifestKey, m engine.Manifest) error {
	if r.live.manifests[key] == string(m.JSON) {
		return nil
	}
	obj := &unstructured.Unstructured{}
	if err := json.Unmarshal(m.JSON, &obj.Object); err != nil {
		return fmt.Errorf("%s: %w", m.Source, err)
	}
	obj.SetNamespace(key.namespace)
	anns := obj.GetAnnotations()
	if anns == nil {
		anns = map[string]string{}
	}
	anns[managedAnnotation] = "true"
	obj.SetAnnotations(anns)
	res := r.resource(key)
	old, err := res.Get(ctx, key.name, metav1.GetOptions{})
	if err == nil && m.Kind == "Service" && clusterIP(old) != clusterIP(obj) {
		// A Service's cluster IP cannot change: a scenario that gives the
		// same Service another address gets a new Service.
		if err := res.Delete(ctx, key.name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("%s: replace Service %s: %w", m.Source, key.name, err)
		}
		if err := r.waitGone(ctx, func() error { _, err := res.Get(ctx, key.name, metav1.GetOptions{}); return err }, "Service "+key.name); err != nil {
			return err
		}
		old, err = nil, apierrors.NewNotFound(key.gvr.GroupResource(), key.name)
	}
	switch {
	case apierrors.IsNotFound(err):
		_, err = res.Create(ctx, obj, metav1.CreateOptions{})
	case err == nil:
		obj.SetResourceVersion(old.GetResourceVersion())
		_, err = res.Update(ctx, obj, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("%s: apply %s %s: %w", m.Source, m.Kind, key.name, err)
	}
	if err := writeStatus(ctx, res, obj, m); err != nil {
		return err
	}
	r.live.manifests[key] = string(m.JSON)
	return nil
}

// writeStatus writes a Service's status.loadBalancer as the scenario gives
// it, through the status subresource: create and update ignore status, and
// with no cloud provider nothing else writes it.
func writeStatus(ctx context.Context, res namespaceableResource, obj *unstructured.Unstructured, m engine.Manifest) error {
	if m.Kind != "Service" {
		return nil
	}
	lb, found, _ := unstructured.NestedMap(obj.Object, "status", "loadBalancer")
	if !found {
		return nil
	}
	live, err := res.Get(ctx, obj.GetName(), metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("%s: read Service %s for its status: %w", m.Source, obj.GetName(), err)
	}
	if err := unstructured.SetNestedMap(live.Object, lb, "status", "loadBalancer"); err != nil {
		return fmt.Errorf("%s: Service %s: status.loadBalancer: %w", m.Source, obj.GetName(), err)
	}
	if _, err := res.Update(ctx, live, metav1.UpdateOptions{}, "status"); err != nil {
		return fmt.Errorf("%s: write status of Service %s: %w", m.Source, obj.GetName(), err)
	}
	return nil
}

// withoutDerivedSlices drops the selector of every Service that the
// scenario writes an EndpointSlice for: the slices are taken as written, and
// the cluster's EndpointSlice controller would otherwise add its own, which
// no other mode has.
func withoutDerivedSlices(ms []engine.Manifest) ([]engine.Manifest, error) {
	written := map[string]bool{}
	for _, m := range ms {
		if m.Kind != "EndpointSlice" {
			continue
		}
		var s struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(m.JSON, &s); err != nil {
			return nil, fmt.Errorf("%s: %w", m.Source, err)
		}
		if name := s.Metadata.Labels["kubernetes.io/service-name"]; name != "" {
			written[namespaceOr(m.Namespace)+"/"+name] = true
		}
	}
	out := slices.Clone(ms)
	for i, m := range out {
		if m.Kind != "Service" || !written[namespaceOr(m.Namespace)+"/"+m.Name] {
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal(m.JSON, &obj); err != nil {
			return nil, fmt.Errorf("%s: %w", m.Source, err)
		}
		if spec, ok := obj["spec"].(map[string]any); ok {
			delete(spec, "selector")
		}
		js, err := json.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Source, err)
		}
		out[i].JSON = js
	}
	return out, nil
}

func namespaceOr(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}

func clusterIP(o *unstructured.Unstructured) string {
	ip, _, _ := unstructured.NestedString(o.Object, "spec", "clusterIP")
	return ip
}

type namespaceableResource interface {
	Get(ctx context.Context, name string, o metav1.GetOptions, sub ...string) (*unstructured.Unstructured, error)
	Create(ctx context.Context, obj *unstructured.Unstructured, o metav1.CreateOptions, sub ...string) (*unstructured.Unstructured, error)
	Update(ctx context.Context, obj *unstructured.Unstructured, o metav1.UpdateOptions, sub ...string) (*unstructured.Unstructured, error)
	Delete(ctx context.Context, name string, o metav1.DeleteOptions, sub ...string) error
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, o metav1.PatchOptions, sub ...string) (*unstructured.Unstructured, error)
}

func (r *Runner) resource(k manifestKey) namespaceableResource {
	if k.namespace == "" {
		return r.dyn.Resource(k.gvr)
	}
	return r.dyn.Resource(k.gvr).Namespace(k.namespace)
}

// clear deletes every managed object: manifests, pods, then namespaces.
func (r *Runner) clear(ctx context.Context) error {
	if err := r.applyManifests(ctx, nil); err != nil {
		return err
	}
	for key := range r.live.pods {
		if err := r.deletePod(ctx, key); err != nil {
			return err
		}
	}
	if err := r.deleteClusterMarker(ctx); err != nil {
		return err
	}
	for name := range r.live.namespaces {
		// Only a namespace the runner created goes: one that was there
		// (kube-system, where spec.dns puts the cluster DNS server) was only
		// labelled, and kube-system cannot be deleted anyway.
		ns, err := r.kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("get namespace %s: %w", name, err)
		case ns.Annotations[managedAnnotation] == "true":
			if err := r.kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete namespace %s: %w", name, err)
			}
		}
		delete(r.live.namespaces, name)
	}
	return nil
}

// podIPList is a pod's addresses as kestrel.dev/ip takes them: one per
// family, comma-separated, IPv4 first.
func podIPList(p *corev1.Pod) string {
	var ips []string
	for _, ip := range p.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	return strings.Join(ips, ",")
}
