package policy

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// KafkaAPIKeys are the apiKey names Cilium's Kafka rules take, and their
// protocol numbers (kafka.apache.org/protocol#protocol_api_keys).
var KafkaAPIKeys = map[string]int16{
	"produce": 0, "fetch": 1, "offsets": 2, "metadata": 3, "leaderandisr": 4, "stopreplica": 5,
	"updatemetadata": 6, "controlledshutdown": 7, "offsetcommit": 8, "offsetfetch": 9,
	"findcoordinator": 10, "joingroup": 11, "heartbeat": 12, "leavegroup": 13, "syncgroup": 14,
	"describegroups": 15, "listgroups": 16, "saslhandshake": 17, "apiversions": 18,
	"createtopics": 19, "deletetopics": 20, "deleterecords": 21, "initproducerid": 22,
	"offsetforleaderepoch": 23, "addpartitionstotxn": 24, "addoffsetstotxn": 25, "endtxn": 26,
	"writetxnmarkers": 27, "txnoffsetcommit": 28, "describeacls": 29, "createacls": 30,
	"deleteacls": 31, "describeconfigs": 32, "alterconfigs": 33,
}

// KafkaRoles are the apiKeys a role stands for, as Cilium maps them:
// produce is produce, metadata and apiversions; consume is what a consumer
// group member sends.
var KafkaRoles = map[string][]int16{
	"produce": {0, 3, 18},
	"consume": {1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18},
}

// kafkaTopic is what Cilium accepts as a topic name (at most 255 long).
var kafkaTopic = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// KafkaAPIKeysOf is the set of apiKeys a validated rule allows; nil means
// any.
func KafkaAPIKeysOf(r KafkaRule) []int16 {
	if r.Role != "" {
		return KafkaRoles[strings.ToLower(r.Role)]
	}
	if r.APIKey != "" {
		return []int16{KafkaAPIKeys[strings.ToLower(r.APIKey)]}
	}
	return nil
}

// KafkaAPIVersionOf is a validated rule's apiVersion; ok is false for any.
func KafkaAPIVersionOf(r KafkaRule) (v int16, ok bool) {
	if r.APIVersion == "" {
		return 0, false
	}
	n, _ := strconv.ParseInt(r.APIVersion, 10, 16)
	return int16(n), true
}

// validateKafkaRules refuses what Cilium refuses: role and apiKey together,
// an unknown role or apiKey name, an apiVersion that is no 16-bit number,
// a topic of other characters or over 255 long.
func validateKafkaRules(c *checker, rs []KafkaRule, path string) {
	for i, r := range rs {
		p := fmt.Sprintf("%s[%d]", path, i)
		if r.Role != "" && r.APIKey != "" {
			c.fail(p, "role and apiKey cannot be set together")
		}
		if _, ok := KafkaRoles[strings.ToLower(r.Role)]; r.Role != "" && !ok {
			c.fail(p+".role", "unknown Kafka role %q (produce or consume)", r.Role)
		}
		if _, ok := KafkaAPIKeys[strings.ToLower(r.APIKey)]; r.APIKey != "" && !ok {
			c.fail(p+".apiKey", "unknown Kafka apiKey %q (produce, fetch, metadata, ...)", r.APIKey)
		}
		if n, err := strconv.ParseInt(r.APIVersion, 10, 16); r.APIVersion != "" && (err != nil || n < 0) {
			c.fail(p+".apiVersion", "%q is no Kafka API version (a number from 0)", r.APIVersion)
		}
		if r.Topic != "" && (len(r.Topic) > 255 || !kafkaTopic.MatchString(r.Topic)) {
			c.fail(p+".topic", "%q is no Kafka topic name (at most 255 of a-z, A-Z, 0-9, '.', '_', '-')", r.Topic)
		}
	}
}

// kafkaOnly reports a toPorts element the Kafka proxy enforces.
func kafkaOnly(r PortRule) bool {
	return r.Rules != nil && r.Rules.Kafka != nil && len(r.ServerNames) == 0 && r.Listener == nil && r.TerminatingTLS == nil && r.OriginatingTLS == nil
}
