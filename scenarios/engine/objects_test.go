package engine

import (
	"strings"
	"testing"

	"github.com/kestrelnet/kestrel/scenarios/format"
)

const podObjectsScenario = `apiVersion: kestrel.dev/v1alpha1
kind: Scenario
metadata: {name: objs}
spec:
  nodes: [n1, n2]
  pods:
    - {name: x/short, node: n2}
  objects:
    - {apiVersion: v1, kind: Namespace, metadata: {name: y, labels: {team: t}}}
    - {apiVersion: v1, kind: ServiceAccount, metadata: {name: sa, namespace: y}}
    - apiVersion: v1
      kind: Pod
      metadata: {name: full, namespace: y, labels: {app: full}}
      spec:
        serviceAccountName: sa
        nodeName: n2
        containers: [{name: c, image: any, ports: [{name: web, containerPort: 8080}]}]
    - apiVersion: v1
      kind: Pod
      metadata: {name: pinned, annotations: {kestrel.dev/ip: 10.244.0.77}}
      spec: {containers: [{name: c, image: any}]}
  steps:
    - apply: [Namespace/y, ServiceAccount/sa, Pod/full, Pod/pinned]
      probes: [{from: x/short, to: y/full, port: web, expect: {verdict: allowed}}]
    - delete: [Pod/full]
    - apply:
        - apiVersion: v1
          kind: Pod
          metadata: {name: full, namespace: y, labels: {app: renamed}}
          spec: {nodeName: n2, containers: [{name: c, image: any, ports: [{containerPort: 9090}]}]}
`

func TestPodAndNamespaceObjectsBecomeThePodsAndNamespacesOfTheCluster(t *testing.T) {
	plan := expand(t, podObjectsScenario)
	first := plan.Steps[0].Cluster
	var full, pinned string
	for _, p := range first.Pods {
		switch p.Namespace + "/" + p.Name {
		case "y/full":
			full = p.Spec.NodeName + " " + p.Status.PodIP + " " + p.Spec.ServiceAccountName + " " + p.Labels["app"] + " " + string(p.Spec.Containers[0].Ports[0].Protocol)
		case "default/pinned":
			pinned = p.Spec.NodeName + " " + p.Status.PodIP
		}
	}
	// x/short takes n2's first address; the Pod object the next one.
	if full != "n2 10.244.1.11 sa full TCP" {
		t.Errorf("y/full = %q", full)
	}
	// pinned has no nodeName: round-robin after x/short (which named its node) gives n1.
	if pinned != "n1 10.244.0.77" {
		t.Errorf("default/pinned = %q", pinned)
	}
	labels := ""
	for _, ns := range first.Namespaces {
		if ns.Name == "y" {
			labels = ns.Labels["team"] + "," + ns.Labels["kubernetes.io/metadata.name"]
		}
	}
	if labels != "t,y" {
		t.Errorf("namespace y labels %q", labels)
	}
	var kinds []string
	for _, m := range first.Manifests {
		kinds = append(kinds, m.Kind)
	}
	if strings.Join(kinds, ",") != "ServiceAccount" {
		t.Errorf("manifests %v: Pods and Namespaces must not be manifests", kinds)
	}
	if p := plan.Steps[0].Probes[0].Probe; p.Port != 8080 {
		t.Errorf("port name resolved to %d", p.Port)
	}
	for _, p := range plan.Steps[1].Cluster.Pods {
		if p.Name == "full" {
			t.Error("a deleted Pod object is still in the cluster")
		}
	}
	again := ""
	for _, p := range plan.Steps[2].Cluster.Pods {
		if p.Name == "full" {
			again = p.Status.PodIP + " " + p.Labels["app"]
		}
	}
	if again != "10.244.1.11 renamed" {
		t.Errorf("a Pod object applied again = %q, want its first address and its new labels", again)
	}
}

func TestPodObjectMistakesNameTheirSource(t *testing.T) {
	head := "apiVersion: kestrel.dev/v1alpha1\nkind: Scenario\nmetadata: {name: e}\nspec:\n  pods: [{name: x/a}]\n"
	tests := []struct{ name, spec, want string }{
		{"a node that is not in spec.nodes", "  objects:\n    - {apiVersion: v1, kind: Pod, metadata: {name: p, namespace: x}, spec: {nodeName: n9, containers: [{name: c}]}}\n",
			`s.yaml:7: node "n9" is not in spec.nodes`},
		{"a pod declared twice", "  objects:\n    - {apiVersion: v1, kind: Pod, metadata: {name: a, namespace: x}, spec: {containers: [{name: c}]}}\n",
			`s.yaml:7: Pod x/a is also declared in spec.pods`},
		{"a bad address annotation", "  objects:\n    - {apiVersion: v1, kind: Pod, metadata: {name: p, annotations: {kestrel.dev/ip: nope}}, spec: {containers: [{name: c}]}}\n",
			`annotation kestrel.dev/ip must be`},
		{"deleting a namespace", "  objects:\n    - {apiVersion: v1, kind: Namespace, metadata: {name: x}}\n  steps: [{apply: [x]}, {delete: [x]}]\n",
			`namespace x cannot be deleted`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := format.Parse("s.yaml", []byte(head+tt.spec))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Expand(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}
