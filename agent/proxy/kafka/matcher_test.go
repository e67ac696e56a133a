package kafkaproxy

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kestrelnet/kestrel/agent/policy"
)

func frame(t testing.TB, clientID string, r kmsg.Request, version int16) []byte {
	t.Helper()
	r.SetVersion(version)
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID)).AppendRequest(nil, r, 42)
}

func produceReq(topics ...string) *kmsg.ProduceRequest {
	r := kmsg.NewPtrProduceRequest()
	r.Acks = -1
	for _, tn := range topics {
		t := kmsg.NewProduceRequestTopic()
		t.Topic = tn
		p := kmsg.NewProduceRequestTopicPartition()
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	}
	return r
}

func parse(t *testing.T, f []byte) *Request {
	t.Helper()
	req, err := ParseRequest(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// Rules as Cilium reads them: apiKey by name, apiVersion exact, clientID
// exact, every topic of a request covered, a topic rule never matching
// topics it cannot read; and a request that tries to slip a topic past a
// rule by naming it with an allowed one is denied.
func TestKafkaRulesFollowCilium(t *testing.T) {
	fetchByID := kmsg.NewPtrFetchRequest()
	ft := kmsg.NewFetchRequestTopic()
	ft.TopicID = [16]byte{1, 2, 3}
	fetchByID.Topics = append(fetchByID.Topics, ft)
	heartbeat := kmsg.NewPtrHeartbeatRequest()
	heartbeat.Group = "g"

	cases := []struct {
		name  string
		rules []policy.KafkaRule
		req   []byte
		allow bool
	}{
		{"apiKey by name", []policy.KafkaRule{{APIKey: "produce"}}, frame(t, "c", produceReq("a"), 7), true},
		{"apiKey case-insensitive", []policy.KafkaRule{{APIKey: "Produce"}}, frame(t, "c", produceReq("a"), 7), true},
		{"other apiKey", []policy.KafkaRule{{APIKey: "fetch"}}, frame(t, "c", produceReq("a"), 7), false},
		{"apiVersion exact", []policy.KafkaRule{{APIKey: "produce", APIVersion: "7"}}, frame(t, "c", produceReq("a"), 7), true},
		{"other apiVersion", []policy.KafkaRule{{APIKey: "produce", APIVersion: "3"}}, frame(t, "c", produceReq("a"), 7), false},
		{"clientID", []policy.KafkaRule{{ClientID: "c"}}, frame(t, "c", produceReq("a"), 7), true},
		{"other clientID", []policy.KafkaRule{{ClientID: "c"}}, frame(t, "d", produceReq("a"), 7), false},
		{"topic", []policy.KafkaRule{{Topic: "a"}}, frame(t, "c", produceReq("a"), 7), true},
		{"topic smuggled beside an allowed one", []policy.KafkaRule{{Topic: "a"}}, frame(t, "c", produceReq("a", "b"), 7), false},
		{"two rules cover two topics", []policy.KafkaRule{{Topic: "a"}, {Topic: "b"}}, frame(t, "c", produceReq("a", "b"), 7), true},
		{"a topicless rule covers all", []policy.KafkaRule{{Topic: "a"}, {APIKey: "produce"}}, frame(t, "c", produceReq("a", "b"), 7), true},
		{"topic by an unknown ID", []policy.KafkaRule{{Topic: "a"}}, frame(t, "c", fetchByID, 13), false},
		{"produce role", []policy.KafkaRule{{Role: "produce"}}, frame(t, "c", produceReq("a"), 7), true},
		{"produce role has no heartbeat", []policy.KafkaRule{{Role: "produce"}}, frame(t, "c", heartbeat, 3), false},
		{"consume role has heartbeat", []policy.KafkaRule{{Role: "consume", Topic: "a"}}, frame(t, "c", heartbeat, 3), true},
		{"no rule", nil, frame(t, "c", produceReq("a"), 7), false},
	}
	for _, c := range cases {
		if got := Compile(c.rules, false).Allows(parse(t, c.req)); got != c.allow {
			t.Errorf("%s: allowed %v, want %v", c.name, got, c.allow)
		}
	}
	// An unreadable body: a topic rule cannot be satisfied by a request of
	// a topic-carrying key; a rule without topic still judges its key.
	bad := frame(t, "c", produceReq("a"), 7)
	bad = bad[:len(bad)-3]
	req := parse(t, bad)
	if req.Msg != nil || Compile([]policy.KafkaRule{{Topic: "a"}}, false).Allows(req) {
		t.Errorf("a truncated produce (msg %v) passed a topic rule", req.Msg)
	}
	if !Compile(nil, true).Allows(req) {
		t.Error("a wildcarded entry denied a request")
	}
}

// A denied request's answer is its own response kind, at its version and
// correlation ID, with TOPIC_AUTHORIZATION_FAILED on every partition (or
// GROUP_AUTHORIZATION_FAILED for group requests), as a client decodes it.
func TestDenialsAreTheRequestsOwnAuthorizationErrors(t *testing.T) {
	check := func(r kmsg.Request, version int16, errs func(kmsg.Response) []int16, want int16) {
		t.Helper()
		req := parse(t, frame(t, "c", r, version))
		out, respond, ok := denial(req)
		if !ok || !respond {
			t.Fatalf("%T v%d: no denial", r, version)
		}
		resp := r.ResponseKind()
		resp.SetVersion(version)
		rd := kbin.Reader{Src: out[4:]}
		if corr := rd.Int32(); corr != 42 {
			t.Errorf("%T: correlation %d", r, corr)
		}
		if resp.IsFlexible() {
			kmsg.SkipTags(&rd)
		}
		if err := resp.ReadFrom(rd.Src); err != nil {
			t.Fatalf("%T v%d: the denial does not decode: %v", r, version, err)
		}
		got := errs(resp)
		if len(got) == 0 {
			t.Errorf("%T v%d: no error codes", r, version)
		}
		for _, c := range got {
			if c != want {
				t.Errorf("%T v%d: error %d, want %d", r, version, c, want)
			}
		}
	}
	for _, v := range []int16{0, 7, 9, 12} {
		check(produceReq("a", "b"), v, func(r kmsg.Response) (out []int16) {
			for _, t := range r.(*kmsg.ProduceResponse).Topics {
				for _, p := range t.Partitions {
					out = append(out, p.ErrorCode)
				}
			}
			return
		}, kerr.TopicAuthorizationFailed.Code)
	}
	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("secret")
	md.Topics = append(md.Topics, mt)
	for _, v := range []int16{1, 9, 12} {
		check(md, v, func(r kmsg.Response) (out []int16) {
			for _, t := range r.(*kmsg.MetadataResponse).Topics {
				out = append(out, t.ErrorCode)
			}
			return
		}, kerr.TopicAuthorizationFailed.Code)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	check(hb, 4, func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.HeartbeatResponse).ErrorCode} }, kerr.GroupAuthorizationFailed.Code)
	ack0 := produceReq("a")
	ack0.Acks = 0
	if _, respond, ok := denial(parse(t, frame(t, "c", ack0, 7))); !ok || respond {
		t.Error("a denied produce with acks 0 was answered: the client expects nothing")
	}
}
