package format

import "strings"

// kafkaProbeKeys are the apiKeys a probe can send (engine.KafkaProbeKeys).
var kafkaProbeKeys = []string{"produce", "fetch", "metadata", "offsets", "createtopics", "deletetopics"}

// validateKafkaProbe checks a probe's kafka request: alone, with exchange:
// request, an apiKey a probe can send (produce by default) and a topic.
func validateKafkaProbe(p *Probe, bad func(string, ...any)) {
	k := p.Kafka
	if k == nil {
		return
	}
	if p.Exchange != "request" {
		bad("kafka is given only with exchange: request")
	}
	if p.HTTP != nil || p.GRPC != nil || p.TLS != nil {
		bad("a kafka request goes alone, without http, grpc or tls")
	}
	if k.APIKey == "" {
		k.APIKey = "produce"
	}
	if !oneOf(strings.ToLower(k.APIKey), kafkaProbeKeys...) {
		bad("kafka.apiKey %q cannot be sent by a probe (%s)", k.APIKey, strings.Join(kafkaProbeKeys, ", "))
	}
	if k.Topic == "" {
		bad("kafka needs topic")
	}
}
