package sim

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kestrelnet/kestrel/scenarios/engine"
)

// kafkaProbe sends the probe's Kafka request from inside ns and reads the
// answer with kmsg: an authorization error (TOPIC_AUTHORIZATION_FAILED,
// GROUP_AUTHORIZATION_FAILED: the proxy's denial) is l7-denied, any other
// answer the broker's own (allowed); a connection cut off unanswered is
// l7-denied too (a proxy with nothing to answer ends it).
func kafkaProbe(from origin, to netip.AddrPort, k *engine.KafkaRequest) (string, string) {
	wire, err := k.Wire()
	if err != nil {
		return "error", err.Error()
	}
	conn, err := from.dial(context.Background(), to.String())
	if err != nil {
		return verdictOf(err), fmt.Sprintf("TCP connect %s: %v", to, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * probeTimeout))
	what := fmt.Sprintf("Kafka %s topic %q to %s", k.APIKey, k.Topic, to)
	if _, err := conn.Write(wire); err != nil {
		return verdictOf(err), fmt.Sprintf("%s: write: %v", what, err)
	}
	r := bufio.NewReader(conn)
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return "l7-denied", fmt.Sprintf("%s: connection ended unanswered: %v", what, err)
		}
		return verdictOf(err), fmt.Sprintf("%s: %v", what, err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return "error", fmt.Sprintf("%s: response: %v", what, err)
	}
	req, _ := k.Msg()
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	rd := kbin.Reader{Src: body}
	if corr := rd.Int32(); corr != engine.KafkaCorrelation {
		return "error", fmt.Sprintf("%s: response to correlation ID %d", what, corr)
	}
	if resp.IsFlexible() {
		kmsg.SkipTags(&rd)
	}
	if err := resp.ReadFrom(rd.Src); err != nil {
		return "error", fmt.Sprintf("%s: response: %v", what, err)
	}
	codes := kafkaErrorCodes(resp)
	ev := fmt.Sprintf("%s: error codes %v", what, codes)
	for _, c := range codes {
		if c == kerr.TopicAuthorizationFailed.Code || c == kerr.GroupAuthorizationFailed.Code {
			return "l7-denied", ev
		}
	}
	return "allowed", ev
}

// kafkaErrorCodes are the error codes of the responses a probe can get.
func kafkaErrorCodes(resp kmsg.Response) []int16 {
	var out []int16
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				out = append(out, p.ErrorCode)
			}
		}
	case *kmsg.FetchResponse:
		out = append(out, r.ErrorCode)
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				out = append(out, p.ErrorCode)
			}
		}
	case *kmsg.MetadataResponse:
		for _, t := range r.Topics {
			out = append(out, t.ErrorCode)
		}
	case *kmsg.ListOffsetsResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				out = append(out, p.ErrorCode)
			}
		}
	case *kmsg.CreateTopicsResponse:
		for _, t := range r.Topics {
			out = append(out, t.ErrorCode)
		}
	case *kmsg.DeleteTopicsResponse:
		for _, t := range r.Topics {
			out = append(out, t.ErrorCode)
		}
	}
	return out
}
