package observe

import (
	"testing"

	flowpb "github.com/kestrelnet/kestrel/agent/hubbleapi/flow"

	"github.com/kestrelnet/kestrel/agent/api"
)

// A Kafka proxy decision is Hubble's Kafka L7 record: apiKey, version,
// correlation ID, the topics (joined) and the error code answered.
func TestKafkaFlowsAreHubblesKafkaRecords(t *testing.T) {
	f := api.Flow{Src: "10.0.0.1", Dst: "10.0.0.3", SrcPort: 40000, DstPort: 9092, Protocol: 6, Direction: "ingress",
		Verdict: "dropped", Reason: "POLICY_DENIED", CT: "l7", Policies: []string{"CiliumNetworkPolicy/x/rule1"},
		L7: &api.L7Flow{Type: "kafka", Kafka: &api.KafkaFlow{APIKey: "produce", APIVersion: 8, CorrelationID: 7,
			Topics: []string{"a", "b"}, ErrorCode: 29}}}
	ps := ToProtos(f, "default")
	if len(ps) != 1 {
		t.Fatalf("%d flows, want the L7 one alone", len(ps))
	}
	k := ps[0].GetL7().GetKafka()
	if ps[0].GetType() != flowpb.FlowType_L7 || ps[0].GetVerdict() != flowpb.Verdict_DROPPED || k.GetApiKey() != "produce" ||
		k.GetApiVersion() != 8 || k.GetCorrelationId() != 7 || k.GetTopic() != "a,b" || k.GetErrorCode() != 29 {
		t.Errorf("Kafka flow %v", ps[0])
	}
}
