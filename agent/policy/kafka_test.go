package policy

import (
	"strings"
	"testing"
)

// Kafka rules are refused as Cilium refuses them, each error at its field;
// valid ones reach the redirected entry on the Kafka proxy's port.
func TestKafkaRulesAreCheckedAndReachTheirEntry(t *testing.T) {
	_, err := ParseYAML([]byte(cnpHeader+`spec:
  endpointSelector: {}
  ingress:
    - toPorts:
      - ports: [{port: "9092", protocol: TCP}]
        rules:
          kafka:
          - {role: admin}
          - {apiKey: produce, role: produce}
          - {apiKey: nosuchkey}
          - {apiVersion: "x"}
          - {apiVersion: "-1"}
          - {topic: "bad topic"}
          - {topic: "`+strings.Repeat("a", 256)+`"}
          - {role: Consume, topic: ok.topic_1-2}
`), "kafka.yaml")
	for _, want := range []string{
		`rules.kafka[0].role: unknown Kafka role "admin"`,
		`rules.kafka[1]: role and apiKey cannot be set together`,
		`rules.kafka[2].apiKey: unknown Kafka apiKey "nosuchkey"`,
		`rules.kafka[3].apiVersion:`,
		`rules.kafka[4].apiVersion:`,
		`rules.kafka[5].topic:`,
		`rules.kafka[6].topic:`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nlacks %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "kafka[7]") {
		t.Errorf("a valid rule was refused: %v", err)
	}
	r := resolveYAML(t, cnpHeader+`spec:
  endpointSelector: {matchLabels: {app: a}}
  ingress:
    - toPorts: [{ports: [{port: "9092", protocol: TCP}], rules: {kafka: [{role: produce, topic: t}]}}]
`)
	_, e, ok := r.Endpoints["x/a"].Policy.Lookup(Ingress, 0, ProtoTCP, 9092)
	if !ok || e.ProxyPort != ProxyPortKafkaIngress || len(e.Kafka) != 1 {
		t.Fatalf("ingress 9092: %+v, want the Kafka proxy's port with the rule", e)
	}
	if keys := KafkaAPIKeysOf(e.Kafka[0]); len(keys) != 3 || keys[0] != 0 || keys[1] != 3 || keys[2] != 18 {
		t.Errorf("the produce role is apiKeys %v, want Cilium's [0 3 18]", keys)
	}
}
