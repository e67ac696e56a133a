package datapath

import (
	"fmt"
	"strings"
	"sync"

	"github.com/cilium/ebpf/btf"
)

// The C enums are the single definition of reasons, verdicts and match types;
// their names are read from the embedded object's BTF, so Go never spells them.
var enumNames = sync.OnceValues(func() (map[string]map[uint32]string, error) {
	spec, err := loadLxc()
	if err != nil {
		return nil, fmt.Errorf("read datapath BTF: %w", err)
	}
	out := map[string]map[uint32]string{}
	for _, name := range []string{"drop_reason", "verdict", "match_type", "ct_status"} {
		var e *btf.Enum
		if err := spec.Types.TypeByName(name, &e); err != nil {
			return nil, fmt.Errorf("datapath BTF has no enum %s: %w", name, err)
		}
		vals := map[uint32]string{}
		for _, v := range e.Values {
			vals[uint32(v.Value)] = v.Name
		}
		out[name] = vals
	}
	return out, nil
})

func enumName(enum string, v uint32, strip string) string {
	names, err := enumNames()
	if err != nil {
		return fmt.Sprintf("%s(%d)", enum, v)
	}
	if n, ok := names[enum][v]; ok {
		return strings.TrimPrefix(n, strip)
	}
	return fmt.Sprintf("%s(%d)", enum, v)
}

// DropReason is why the datapath dropped a packet; 0 means it did not.
type DropReason uint8

// String returns the C name without its DROP_ prefix, e.g. POLICY_DENIED.
func (r DropReason) String() string { return enumName("drop_reason", uint32(r), "DROP_") }

// DropReasons returns every named drop reason, by name.
func DropReasons() (map[string]DropReason, error) {
	names, err := enumNames()
	if err != nil {
		return nil, err
	}
	out := map[string]DropReason{}
	for v, n := range names["drop_reason"] {
		if strings.HasPrefix(n, "__") {
			continue
		}
		out[strings.TrimPrefix(n, "DROP_")] = DropReason(v)
	}
	return out, nil
}

// Verdict is what the datapath did with a packet.
type Verdict uint8

const (
	VerdictForwarded  = Verdict(lxcVerdictVERDICT_FORWARDED)
	VerdictDropped    = Verdict(lxcVerdictVERDICT_DROPPED)
	VerdictRedirected = Verdict(lxcVerdictVERDICT_REDIRECTED)
)

func (v Verdict) String() string { return enumName("verdict", uint32(v), "VERDICT_") }

// MatchType is which kind of policy entry decided, named as Hubble names it.
type MatchType uint8

func (m MatchType) String() string {
	return strings.ReplaceAll(strings.ToLower(enumName("match_type", uint32(m), "MATCH_")), "_", "-")
}

// CTStatus is the conntrack classification of a packet.
type CTStatus uint8

// CTReply marks a packet of the direction opposite to the one that opened
// its flow.
const CTReply = CTStatus(lxcCtStatusCT_REPLY)

func (c CTStatus) String() string {
	return strings.ToLower(enumName("ct_status", uint32(c), "CT_"))
}

// Direction is relative to the endpoint whose hook saw the packet.
type Direction uint8

const (
	Ingress = Direction(lxcTrafficDirectionDIR_INGRESS)
	Egress  = Direction(lxcTrafficDirectionDIR_EGRESS)
)

func (d Direction) String() string {
	if d == Egress {
		return "egress"
	}
	return "ingress"
}
