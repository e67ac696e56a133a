package kafkaproxy

import (
	"slices"

	"github.com/kestrelnet/kestrel/agent/policy"
)

// Matcher decides requests by one policy entry's Kafka rules, as Cilium
// does: a rule matches a request of one of its apiKeys (its role's, its
// apiKey, or any), of its apiVersion (or any), from its clientID (or any);
// a request naming topics is allowed only when every one of its topics is
// allowed by a matching rule naming it or by a matching rule naming none.
type Matcher struct {
	wildcard bool
	rules    []rule
}

type rule struct {
	keys     []int16 // nil: any
	version  int16
	anyVer   bool
	clientID string
	topic    string
}

// Compile builds the matcher of a redirected entry's Kafka rules
// (validated by agent/policy).
func Compile(rs []policy.KafkaRule, wildcard bool) *Matcher {
	m := &Matcher{wildcard: wildcard}
	for _, r := range rs {
		v, ok := policy.KafkaAPIVersionOf(r)
		m.rules = append(m.rules, rule{keys: policy.KafkaAPIKeysOf(r), version: v, anyVer: !ok, clientID: r.ClientID, topic: r.Topic})
	}
	return m
}

// Allows judges one request.
func (m *Matcher) Allows(req *Request) bool {
	if m.wildcard {
		return true
	}
	need := map[string]bool{}
	for _, t := range req.Topics {
		need[t] = true
	}
	for _, r := range m.rules {
		if !r.matches(req) {
			continue
		}
		if r.topic == "" || len(req.Topics) == 0 {
			return true
		}
		if need[r.topic] {
			delete(need, r.topic)
			if len(need) == 0 {
				return true
			}
		}
	}
	return false
}

// matches is everything of a rule but the topic coverage Allows counts.
// The client ID is checked on every request (Cilium skips it on requests
// its parser did not read; kmsg reads them all). A topic rule never
// matches a request whose topics could not be read.
func (r rule) matches(req *Request) bool {
	if r.keys != nil && !slices.Contains(r.keys, req.Key) {
		return false
	}
	if !r.anyVer && r.version != req.Version {
		return false
	}
	if r.clientID != "" && r.clientID != req.ClientID {
		return false
	}
	if r.topic != "" && topicKeys[req.Key] && !req.TopicsRead {
		return false
	}
	return true
}
