package kafkaproxy

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kestrelnet/kestrel/agent/policy"
)

// FuzzKafkaRequests feeds arbitrary bytes to the request reader as a
// client's stream: nothing panics; every request the produce-role rule on
// topic "a" allows is a produce, metadata or apiversions request naming no
// topic but "a"; every denial decodes as the request's own response kind.
func FuzzKafkaRequests(f *testing.F) {
	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("b")
	md.Topics = append(md.Topics, mt)
	for _, seed := range [][]byte{
		frame(f, "c", produceReq("a"), 7),
		frame(f, "c", produceReq("a", "b"), 9),
		append(frame(f, "c", produceReq("a"), 3), frame(f, "c", md, 12)...),
		frame(f, "", kmsg.NewPtrApiVersionsRequest(), 3),
		frame(f, "c", kmsg.NewPtrFetchRequest(), 13),
		{0, 0, 0, 2, 0, 0},
	} {
		f.Add(seed)
	}
	m := Compile([]policy.KafkaRule{{Role: "produce", Topic: "a"}}, false)
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for {
			fr, err := readFrame(r)
			if err != nil {
				return
			}
			req, err := ParseRequest(fr, func([16]byte) string { return "" })
			if err != nil {
				return
			}
			if m.Allows(req) {
				if req.Key != 0 && req.Key != 3 && req.Key != 18 {
					t.Fatalf("allowed apiKey %d under the produce role", req.Key)
				}
				for _, tp := range req.Topics {
					if tp != "a" {
						t.Fatalf("allowed a request naming topic %q", tp)
					}
				}
				continue
			}
			out, respond, ok := denial(req)
			if !ok || !respond {
				continue
			}
			resp := req.Msg.ResponseKind()
			resp.SetVersion(req.Version)
			rd := kbin.Reader{Src: out[4:]}
			rd.Int32()
			if resp.IsFlexible() && resp.Key() != 18 {
				kmsg.SkipTags(&rd)
			}
			if err := resp.ReadFrom(rd.Src); err != nil {
				t.Fatalf("the denial of apiKey %d v%d does not decode: %v", req.Key, req.Version, err)
			}
		}
	})
}
