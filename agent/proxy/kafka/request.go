// Package kafkaproxy is the node's transparent Kafka proxy for L7 policy:
// it reads each request of a redirected connection with franz-go's kmsg
// (never by hand), judges it by Cilium's Kafka rule semantics, forwards an
// allowed one to the original destination and answers a denied one with
// that request's authorization error, as Cilium does.
package kafkaproxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxFrame bounds a request or response (Kafka's own default
// socket.request.max.bytes is 100 MiB).
const maxFrame = 100 << 20

// Request is one parsed request.
type Request struct {
	Key, Version int16
	Correlation  int32
	ClientID     string
	// Msg is the body as kmsg reads it; nil when kmsg knows no such key
	// or the body does not parse at that version.
	Msg kmsg.Request
	// Topics are the topic names the request names (by name or, when
	// resolved, by topic ID); an ID no Metadata answer has named is "".
	Topics []string
	// TopicsRead: Msg is of a kind whose topics topicsOf reads.
	TopicsRead bool
	// Raw is the whole frame, size prefix included, as the client sent it.
	Raw []byte
}

// readFrame reads one size-prefixed frame.
func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > maxFrame {
		return nil, fmt.Errorf("a %d byte frame is over the %d byte limit", n, maxFrame)
	}
	buf := make([]byte, 4+n)
	copy(buf, size[:])
	if _, err := io.ReadFull(r, buf[4:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// ParseRequest reads a request frame (size prefix included): its header
// with kbin, its body with kmsg. An error means not even the header
// parsed; a body kmsg cannot read leaves Msg nil.
func ParseRequest(frame []byte, names func([16]byte) string) (*Request, error) {
	if len(frame) < 4 {
		return nil, errors.New("short frame")
	}
	rd := kbin.Reader{Src: frame[4:]}
	req := &Request{Key: rd.Int16(), Version: rd.Int16(), Correlation: rd.Int32(), Raw: frame}
	if id := rd.NullableString(); id != nil {
		req.ClientID = *id
	}
	if err := rd.Complete(); err != nil {
		return nil, fmt.Errorf("request header: %w", err)
	}
	msg := kmsg.RequestForKey(req.Key)
	if msg == nil || req.Version < 0 || req.Version > msg.MaxVersion() {
		return req, nil
	}
	msg.SetVersion(req.Version)
	if msg.IsFlexible() {
		kmsg.SkipTags(&rd)
		if !rd.Ok() {
			return req, nil
		}
	}
	if err := msg.ReadFrom(rd.Src); err != nil {
		return req, nil
	}
	req.Msg = msg
	req.Topics, req.TopicsRead = topicsOf(msg, names)
	return req, nil
}

// topicsOf lists the topics a request names. Requests of later versions
// name topics by ID; names gives their names.
func topicsOf(msg kmsg.Request, names func([16]byte) string) ([]string, bool) {
	var out []string
	add := func(name string, id [16]byte) {
		if name == "" && id != ([16]byte{}) && names != nil {
			name = names(id)
		}
		out = append(out, name)
	}
	switch m := msg.(type) {
	case *kmsg.ProduceRequest:
		for _, t := range m.Topics {
			add(t.Topic, t.TopicID)
		}
	case *kmsg.FetchRequest:
		for _, t := range m.Topics {
			add(t.Topic, t.TopicID)
		}
	case *kmsg.ListOffsetsRequest:
		for _, t := range m.Topics {
			add(t.Topic, [16]byte{})
		}
	case *kmsg.MetadataRequest:
		for _, t := range m.Topics {
			n := ""
			if t.Topic != nil {
				n = *t.Topic
			}
			add(n, t.TopicID)
		}
	case *kmsg.OffsetCommitRequest:
		for _, t := range m.Topics {
			add(t.Topic, t.TopicID)
		}
	case *kmsg.OffsetFetchRequest:
		for _, t := range m.Topics {
			add(t.Topic, [16]byte{})
		}
		for _, g := range m.Groups {
			for _, t := range g.Topics {
				add(t.Topic, t.TopicID)
			}
		}
	case *kmsg.CreateTopicsRequest:
		for _, t := range m.Topics {
			add(t.Topic, [16]byte{})
		}
	case *kmsg.DeleteTopicsRequest:
		for _, n := range m.TopicNames {
			add(n, [16]byte{})
		}
		for _, t := range m.Topics {
			n := ""
			if t.Topic != nil {
				n = *t.Topic
			}
			add(n, t.TopicID)
		}
	case *kmsg.DeleteRecordsRequest:
		for _, t := range m.Topics {
			add(t.Topic, [16]byte{})
		}
	case *kmsg.OffsetForLeaderEpochRequest:
		for _, t := range m.Topics {
			add(t.Topic, [16]byte{})
		}
	case *kmsg.AddPartitionsToTxnRequest:
		for _, t := range m.Topics {
			add(t.Topic, [16]byte{})
		}
		for _, tx := range m.Transactions {
			for _, t := range tx.Topics {
				add(t.Topic, [16]byte{})
			}
		}
	case *kmsg.TxnOffsetCommitRequest:
		for _, t := range m.Topics {
			add(t.Topic, t.TopicID)
		}
	case *kmsg.CreatePartitionsRequest:
		for _, t := range m.Topics {
			add(t.Topic, [16]byte{})
		}
	default:
		return nil, false
	}
	return out, true
}

// topicKeys are the apiKeys whose requests carry topics (Cilium's list): a
// topic rule never matches one whose topics could not be read.
var topicKeys = map[int16]bool{0: true, 1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 8: true, 9: true,
	19: true, 20: true, 21: true, 23: true, 24: true, 27: true, 28: true, 34: true, 35: true, 37: true}
