package policy

import (
	"strings"
	"testing"
)

func TestWarningsNameWhatIsNotEnforcedYetAndWhatHappensInstead(t *testing.T) {
	objs, err := ParseYAML([]byte(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: api, namespace: x}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - toPorts:
        - ports: [{port: "80", protocol: TCP}]
          rules: {l7proto: r2d2, l7: [{cmd: READ}]}
        - ports: [{port: "8080", protocol: TCP}]
        - ports: [{port: "8081", protocol: TCP}]
          rules: {http: [{method: GET}]}
        - ports: [{port: "9092", protocol: TCP}]
          rules: {kafka: [{topic: t}]}
        - ports: [{port: "443", protocol: TCP}]
          serverNames: [a.io]
  egress:
    - toFQDNs: [{matchName: example.com}]
    - toPorts:
        - ports: [{port: "53", protocol: ANY}]
          rules: {dns: [{matchPattern: "*"}]}
`), "l7.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Warnings(&objs[0]), "\n")
	for _, want := range []string{
		`l7.yaml:1: CiliumNetworkPolicy/x/api: spec.ingress[0].toPorts[0].rules.l7proto: l7proto "r2d2" (a generic proxylib parser) has no proxy in Kestrel: traffic to these ports is dropped (PROXY_UNAVAILABLE), never passed unfiltered`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "toPorts[1]") {
		t.Errorf("a port without L7 rules was warned about:\n%s", got)
	}
	for _, i := range []string{"toPorts[2]", "toPorts[3]", "toPorts[4]"} {
		if strings.Contains(got, i) {
			t.Errorf("%s: HTTP, Kafka or TLS rules, which their proxies enforce, were warned about:\n%s", i, got)
		}
	}
	if strings.Contains(got, "egress") {
		t.Errorf("toFQDNs or DNS rules, which the DNS proxy enforces, were warned about:\n%s", got)
	}
}
