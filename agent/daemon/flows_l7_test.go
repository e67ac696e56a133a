package daemon

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/agent/proxy"
	kafkaproxy "github.com/kestrelnet/kestrel/agent/proxy/kafka"
	tlsproxy "github.com/kestrelnet/kestrel/agent/proxy/tls"
)

// The TLS and Kafka proxies' decisions are flows with their L7 fields: a
// denied handshake or request is dropped POLICY_DENIED at ct l7, an
// allowed one forwarded; the endpoint, identities and policies come from
// the resolved connection.
func TestTLSAndKafkaDecisionsBecomeL7Flows(t *testing.T) {
	d := &Daemon{cfg: Config{Node: "node-1"}}
	conn := &proxy.Resolved{EndpointID: 4, SrcIdentity: 310, DstIdentity: 311, Policies: []string{"CiliumNetworkPolicy/x/l4-sni-rule"}}
	client, server := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("203.0.113.11:443")
	d.recordTLS(tlsproxy.Record{Direction: policy.Egress, Client: client, Server: server, Conn: conn, ServerName: "two.one.one.one"})
	d.recordTLS(tlsproxy.Record{Direction: policy.Egress, Client: client, Server: server, Conn: conn, ServerName: "one.one.one.one", Allowed: true})
	kserver := netip.MustParseAddrPort("10.0.0.3:9092")
	d.recordKafka(kafkaproxy.Record{Direction: policy.Ingress, Client: client, Server: kserver, Conn: conn,
		Key: 0, Version: 8, Correlation: 7, ClientID: "empire-hq", Topics: []string{"secret-topic"}, ErrorCode: 29})
	d.recordKafka(kafkaproxy.Record{Direction: policy.Ingress, Client: client, Server: kserver, Conn: conn,
		Key: 1, Version: 12, Topics: []string{"empire-announce"}, Allowed: true})
	got := d.Flows(0).Flows
	if len(got) != 4 {
		t.Fatalf("%d flows, want 4", len(got))
	}
	for i, f := range got {
		wantDenied := i%2 == 0
		if (f.Verdict == "dropped") != wantDenied || (f.Reason == "POLICY_DENIED") != wantDenied || f.CT != "l7" || f.L7 == nil ||
			f.EndpointID != 4 || f.SrcIdentity != 310 || f.DstIdentity != 311 || len(f.Policies) != 1 || f.Src != "10.0.0.1" {
			t.Errorf("flow %d: %+v %+v", i, f, f.L7)
		}
	}
	if tl := got[0].L7; tl.Type != "tls" || tl.TLS == nil || tl.TLS.ServerName != "two.one.one.one" || got[0].DstPort != 443 {
		t.Errorf("denied handshake's flow: %+v", tl)
	}
	k := got[2].L7
	if k.Type != "kafka" || k.Kafka == nil || k.Kafka.APIKey != "produce" || k.Kafka.APIVersion != 8 || k.Kafka.CorrelationID != 7 ||
		k.Kafka.ClientID != "empire-hq" || !slices.Equal(k.Kafka.Topics, []string{"secret-topic"}) || k.Kafka.ErrorCode != 29 {
		t.Errorf("denied Kafka request's flow: %+v", k.Kafka)
	}
	if k := got[3].L7.Kafka; k == nil || k.APIKey != "fetch" || k.ErrorCode != 0 {
		t.Errorf("allowed fetch's flow: %+v", k)
	}
}
