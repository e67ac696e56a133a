package engine

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kestrelnet/kestrel/scenarios/format"
)

const servicesScenario = `apiVersion: kestrel.dev/v1alpha1
kind: Scenario
metadata: {name: svcs}
spec:
  nodes: [n1, n2]
  pods:
    - {name: x/v1, node: n1, labels: {app: api}, ports: [{name: api, port: 8080, protocol: TCP}]}
    - {name: x/v2, node: n2, labels: {app: api}, ports: [{name: api, port: 9090, protocol: TCP}]}
    - {name: x/unnamed, node: n2, labels: {app: api}, ports: [7070/TCP]}
    - {name: y/v3, node: n2, labels: {app: api}, ports: [{name: api, port: 8080, protocol: TCP}]}
  objects:
    - apiVersion: v1
      kind: Service
      metadata: {name: api, namespace: x}
      spec:
        selector: {app: api}
        ports: [{name: http, port: 80, targetPort: api}, {name: raw, port: 81, targetPort: 7070}]
    - apiVersion: v1
      kind: Service
      metadata: {name: written, namespace: x}
      spec:
        clusterIP: 10.96.9.9
        selector: {app: api}
        ports: [{name: http, port: 80}]
    - apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata: {name: written-1, namespace: x, labels: {kubernetes.io/service-name: written}}
      addressType: IPv4
      ports: [{name: http, port: 80, protocol: TCP}]
      endpoints: [{addresses: [10.244.0.10]}]
`

// The engine derives slices as the EndpointSlice controller does, and none
// for a service that has one written.
func TestServiceObjectsDeriveSlicesFromPods(t *testing.T) {
	s, err := format.Parse("s.yaml", []byte(servicesScenario))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Expand(s)
	if err != nil {
		t.Fatal(err)
	}
	svcs, eps, err := ServiceObjects(plan.Steps[0].Cluster)
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 2 || svcs[0].Spec.ClusterIP != "10.96.0.10" || svcs[1].Spec.ClusterIP != "10.96.9.9" {
		t.Fatalf("services %+v", svcs)
	}
	var got []string
	for _, e := range eps {
		var ports, addrs []string
		for _, p := range e.Ports {
			ports = append(ports, fmt.Sprintf("%s=%d", *p.Name, *p.Port))
		}
		for _, ep := range e.Endpoints {
			node := ""
			if ep.NodeName != nil {
				node = *ep.NodeName
			}
			addrs = append(addrs, ep.Addresses[0]+"@"+node)
		}
		got = append(got, fmt.Sprintf("%s %s [%s] [%s]", e.Labels["kubernetes.io/service-name"], e.AddressType, strings.Join(ports, ","), strings.Join(addrs, ",")))
	}
	slices.Sort(got)
	want := []string{
		// Each pod's own "api" port; the pod without one serves only "raw";
		// the pod of namespace y is no endpoint of x/api.
		"api IPv4 [http=8080,raw=7070] [10.244.0.10@n1]",
		"api IPv4 [http=9090,raw=7070] [10.244.1.10@n2]",
		"api IPv4 [raw=7070] [10.244.1.11@n2]",
		"written IPv4 [http=80] [10.244.0.10@]",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("slices:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
