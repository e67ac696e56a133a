package kafkaproxy

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/agent/proxy"
)

type fixed struct{ r *proxy.Resolved }

func (f fixed) ResolveEntry(policy.Direction, netip.AddrPort, netip.AddrPort) (*proxy.Resolved, error) {
	return f.r, nil
}

// rig is a real Kafka protocol peer (franz-go's kfake broker) behind the
// proxy with rules; clients are franz-go's kgo, every connection of theirs
// dialled to the proxy (as the datapath's redirect would take it there).
type rig struct {
	broker string
	proxy  string
	mu     sync.Mutex
	recs   []Record
}

func newRig(t *testing.T, rules []policy.KafkaRule) *rig {
	t.Helper()
	return newRigResolving(t, func(r *rig) Resolver {
		return fixed{&proxy.Resolved{Entry: policy.Entry{ProxyPort: policy.ProxyPortKafkaEgress, Kafka: rules}, Dial: r.dial}}
	})
}

// dial is the upstream dialer: to the broker, whatever the address.
func (r *rig) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	return (&net.Dialer{}).DialContext(ctx, network, r.broker)
}

func newRigResolving(t *testing.T, resolver func(*rig) Resolver) *rig {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "empire-announce", "deathstar-plans"), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &rig{broker: c.ListenAddrs()[0], proxy: ln.Addr().String()}
	s := &Server{Direction: policy.Egress, Observe: func(rec Record) { r.mu.Lock(); r.recs = append(r.recs, rec); r.mu.Unlock() },
		Resolver: resolver(r)}
	go s.Serve(ln)
	return r
}

func (r *rig) client(t *testing.T, via bool, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	// Cilium's produce role has no InitProducerID: an idempotent producer
	// is refused its producer ID, so these write without one, as a
	// client under that role must.
	opts = append([]kgo.Opt{kgo.SeedBrokers(r.broker), kgo.RequestRetries(0), kgo.RecordRetries(1), kgo.DisableIdempotentWrite(),
		kgo.RetryTimeout(2 * time.Second), kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)
	if via {
		opts = append(opts, kgo.Dialer(func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, r.proxy)
		}))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produce(cl *kgo.Client, topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("Ahead of schedule")}).FirstErr()
}

// Cilium's kafka.yaml example as the proxy enforces it: the produce role
// on one topic lets a real client produce there, and nothing else: another
// topic gets TOPIC_AUTHORIZATION_FAILED, and consuming (fetch, not in the
// produce role) is refused too, while nothing of it reaches the broker.
func TestProduceRoleOnOneTopic(t *testing.T) {
	r := newRig(t, []policy.KafkaRule{{Role: "produce", Topic: "empire-announce"}})
	cl := r.client(t, true, kgo.ClientID("empire-hq"))
	if err := produce(cl, "empire-announce"); err != nil {
		t.Fatalf("produce to the allowed topic: %v", err)
	}
	if err := produce(cl, "deathstar-plans"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce to another topic: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	direct := r.client(t, false)
	if err := produce(direct, "deathstar-plans"); err != nil {
		t.Fatalf("produce straight to the broker: %v", err)
	}
	// The denied produce never reached the broker: only the direct one is there.
	if n := count(t, r.client(t, false, kgo.ConsumeTopics("deathstar-plans")), 1); n != 1 {
		t.Errorf("deathstar-plans holds %d records, want only the direct one", n)
	}
	consumer := r.client(t, true, kgo.ConsumeTopics("empire-announce"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	fs := consumer.PollFetches(ctx)
	if n := fs.NumRecords(); n != 0 {
		t.Errorf("a consumer under the produce role read %d records", n)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var deniedFetch, deniedProduce bool
	for _, rec := range r.recs {
		switch {
		case !rec.Allowed && rec.Key == 1:
			deniedFetch = true
		case !rec.Allowed && rec.Key == 0 || !rec.Allowed && rec.Key == 3 && slices.Contains(rec.Topics, "deathstar-plans"):
			deniedProduce = deniedProduce || rec.ErrorCode == kerr.TopicAuthorizationFailed.Code
		}
	}
	if !deniedProduce {
		t.Errorf("no denied produce/metadata for deathstar-plans answered TOPIC_AUTHORIZATION_FAILED: %v", r.recs)
	}
	_ = deniedFetch // the consumer may stop at its metadata or offsets; either is denied
}

// The consume role reads (Fetch by topic ID: the proxy learns IDs from the
// broker's Metadata answers) but may not produce; a clientID rule lets
// only that client through.
func TestConsumeRoleAndClientID(t *testing.T) {
	r := newRig(t, []policy.KafkaRule{{Role: "consume", Topic: "empire-announce", ClientID: "rebels"}})
	if err := produce(r.client(t, false), "empire-announce"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, r.client(t, true, kgo.ClientID("rebels"), kgo.ConsumeTopics("empire-announce")), 1); n != 1 {
		t.Errorf("the allowed consumer read %d records, want 1", n)
	}
	if n := count(t, r.client(t, true, kgo.ClientID("empire"), kgo.ConsumeTopics("empire-announce")), 0); n != 0 {
		t.Errorf("a consumer with another client ID read %d records", n)
	}
	if err := produce(r.client(t, true, kgo.ClientID("rebels")), "empire-announce"); err == nil {
		t.Error("the consume role produced")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Fetch names topics by ID from v13; an incremental fetch of a session
	// (KIP-227) names none and continues what an earlier one named.
	fetched := false
	for _, rec := range r.recs {
		if rec.Key == 1 && rec.Allowed && len(rec.Topics) > 0 {
			fetched = fetched || rec.Version >= 13
			if !slices.Equal(rec.Topics, []string{"empire-announce"}) {
				t.Errorf("an allowed fetch (v%d) named topics %q", rec.Version, rec.Topics)
			}
		}
	}
	if !fetched {
		t.Error("no fetch by topic ID was allowed")
	}
}

// count consumes until want records or a few seconds pass.
func count(t *testing.T, cl *kgo.Client, want int) int {
	t.Helper()
	n := 0
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) && (n < want || want == 0) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		n += fs.NumRecords()
		if want == 0 && time.Now().After(deadline.Add(-2*time.Second)) {
			break
		}
	}
	return n
}

// switching is a resolver whose rules change, as proxy.Table's do when the
// agent writes a new policy: Generation moves on with each change.
type switching struct {
	mu    sync.Mutex
	rules []policy.KafkaRule
	gen   uint64
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (s *switching) ResolveEntry(policy.Direction, netip.AddrPort, netip.AddrPort) (*proxy.Resolved, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &proxy.Resolved{Entry: policy.Entry{ProxyPort: policy.ProxyPortKafkaEgress, Kafka: s.rules}, Dial: s.dial, Generation: s.gen}, nil
}

func (s *switching) Generation() uint64 { s.mu.Lock(); defer s.mu.Unlock(); return s.gen }

func (s *switching) set(rules []policy.KafkaRule) {
	s.mu.Lock()
	s.rules = rules
	s.gen++
	s.mu.Unlock()
}

// A policy change applies to the next request of a client connection that
// is already open: on one connection to the proxy, a Metadata request for
// a topic of the produce role is allowed; the policy moves the role to
// another topic, and the same request on the same connection is refused.
func TestAPolicyChangeAppliesToOpenConnections(t *testing.T) {
	sw := &switching{rules: []policy.KafkaRule{{Role: "produce", Topic: "empire-announce"}}}
	r := newRigResolving(t, func(r *rig) Resolver { sw.dial = r.dial; return sw })
	c, err := net.Dial("tcp", r.proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("empire-hq"))
	ask := func(corr int32) {
		t.Helper()
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 4
		topic := kmsg.NewMetadataRequestTopic()
		topic.Topic = kmsg.StringPtr("empire-announce")
		req.Topics = append(req.Topics, topic)
		if _, err := c.Write(f.AppendRequest(nil, req, corr)); err != nil {
			t.Fatal(err)
		}
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			t.Fatalf("request %d unanswered: %v", corr, err)
		}
		if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(size[:]))); err != nil {
			t.Fatal(err)
		}
	}
	allowed := func() []bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		var out []bool
		for _, rec := range r.recs {
			out = append(out, rec.Allowed)
		}
		return out
	}
	ask(1)
	sw.set([]policy.KafkaRule{{Role: "produce", Topic: "deathstar-plans"}})
	ask(2)
	if got := allowed(); !slices.Equal(got, []bool{true, false}) {
		t.Fatalf("the same Metadata request before and after the policy change, on one connection: allowed %v, want [true false]", got)
	}
}
