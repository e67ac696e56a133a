package engine

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// KafkaRequest is one Kafka request of an `exchange: request` probe.
type KafkaRequest struct {
	APIKey   string // produce, fetch, metadata, offsets, createtopics, deletetopics
	Topic    string
	ClientID string
}

// KafkaProbeKeys are the apiKeys a probe can send, at the versions it
// sends them (ones that name topics by name).
var KafkaProbeKeys = map[string]int16{"produce": 8, "fetch": 12, "metadata": 9, "offsets": 5, "createtopics": 4, "deletetopics": 4}

// KafkaCorrelation is the correlation ID of a probe's request.
const KafkaCorrelation = 7

// Msg is the request as kmsg builds it, at the probe's version.
func (k *KafkaRequest) Msg() (kmsg.Request, error) {
	v, ok := KafkaProbeKeys[strings.ToLower(k.APIKey)]
	if !ok {
		return nil, fmt.Errorf("kafka apiKey %q cannot be sent by a probe", k.APIKey)
	}
	var r kmsg.Request
	switch strings.ToLower(k.APIKey) {
	case "produce":
		m := kmsg.NewPtrProduceRequest()
		m.Acks, m.TimeoutMillis = 1, 5000
		t := kmsg.NewProduceRequestTopic()
		t.Topic = k.Topic
		t.Partitions = append(t.Partitions, kmsg.NewProduceRequestTopicPartition())
		m.Topics = append(m.Topics, t)
		r = m
	case "fetch":
		m := kmsg.NewPtrFetchRequest()
		m.MaxWaitMillis, m.MaxBytes = 10, 1<<20
		t := kmsg.NewFetchRequestTopic()
		t.Topic = k.Topic
		p := kmsg.NewFetchRequestTopicPartition()
		p.PartitionMaxBytes = 1 << 20
		t.Partitions = append(t.Partitions, p)
		m.Topics = append(m.Topics, t)
		r = m
	case "metadata":
		m := kmsg.NewPtrMetadataRequest()
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(k.Topic)
		m.Topics = append(m.Topics, t)
		r = m
	case "offsets":
		m := kmsg.NewPtrListOffsetsRequest()
		t := kmsg.NewListOffsetsRequestTopic()
		t.Topic = k.Topic
		t.Partitions = append(t.Partitions, kmsg.NewListOffsetsRequestTopicPartition())
		m.Topics = append(m.Topics, t)
		r = m
	case "createtopics":
		m := kmsg.NewPtrCreateTopicsRequest()
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = k.Topic, 1, 1
		m.Topics = append(m.Topics, t)
		r = m
	case "deletetopics":
		m := kmsg.NewPtrDeleteTopicsRequest()
		m.TopicNames = []string{k.Topic}
		t := kmsg.NewDeleteTopicsRequestTopic()
		t.Topic = kmsg.StringPtr(k.Topic)
		m.Topics = append(m.Topics, t)
		r = m
	}
	r.SetVersion(v)
	return r, nil
}

// Wire is the request frame every runner sends (unit mode hands the same
// bytes to the proxy's parser).
func (k *KafkaRequest) Wire() ([]byte, error) {
	r, err := k.Msg()
	if err != nil {
		return nil, err
	}
	var opts []kmsg.RequestFormatterOpt
	if k.ClientID != "" {
		opts = append(opts, kmsg.FormatterClientID(k.ClientID))
	}
	return kmsg.NewRequestFormatter(opts...).AppendRequest(nil, r, KafkaCorrelation), nil
}
