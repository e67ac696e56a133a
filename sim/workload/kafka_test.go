package workload

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A kafka port is a broker a real client produces to and reads back from.
func TestKafkaPortIsABroker(t *testing.T) {
	ports, err := ParsePorts("0/TCP/kafka")
	if err != nil || !ports[0].Kafka || FormatPorts(ports) != "0/TCP/kafka" {
		t.Fatalf("ParsePorts: %v %v", ports, err)
	}
	s, err := Start(Options{Pod: "ns/kafka", Host: "127.0.0.1", Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr(0).String()), kgo.ConsumeTopics("t"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fs := cl.PollFetches(ctx)
	if fs.NumRecords() != 1 || string(fs.Records()[0].Value) != "v" {
		t.Fatalf("read back %d records, errors %v", fs.NumRecords(), fs.Errors())
	}
}
