package observe

import (
	"strconv"

	"github.com/google/uuid"

	"github.com/kestrelnet/kestrel/agent/api"
)

// flowUUIDSpace names Kestrel's flow UUIDs (version 5, SHA-1, RFC 9562).
var flowUUIDSpace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://kestrelnet.dev/flow"))

// flowUUID is the UUID of one of a flow's Hubble events: derived from its
// node, time and ring sequence number (and which event: a policy verdict
// and its trace are two), so the same flow has the same UUID every time
// it is served, from the agent or through the relay, and `hubble observe
// --uuid` finds it, while the ring keeps nothing more per flow.
func flowUUID(f api.Flow, event byte) string {
	b := make([]byte, 0, 64)
	b = append(b, f.Node...)
	b = append(b, '/')
	b = strconv.AppendInt(b, f.TimeUnixNs, 10)
	b = append(b, '/')
	b = strconv.AppendUint(b, f.Seq, 10)
	b = append(b, '/', event)
	return uuid.NewSHA1(flowUUIDSpace, b).String()
}
