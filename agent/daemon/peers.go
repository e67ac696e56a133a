package daemon

import (
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/agent/identity"
	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/datapath"
)

// peerIndex is what flows are enriched with: the pod behind each address
// and the labels of each identity, as of the last regeneration. It is
// replaced whole, never modified, so flows read it without a lock.
type peerIndex struct {
	pods   map[netip.Addr]api.Peer
	labels map[uint32][]string
	// enforcedBy is, per local endpoint id, the policies that made each
	// direction default-deny (index 0 ingress, 1 egress).
	enforcedBy map[uint32][2][]string
}

// buildPeerIndex indexes the pods the resolution saw (one per address) and
// the identities it numbered.
func buildPeerIndex(pods []*corev1.Pod, ids *identity.Allocator) *peerIndex {
	x := &peerIndex{pods: map[netip.Addr]api.Peer{}, labels: map[uint32][]string{}, enforcedBy: map[uint32][2][]string{}}
	for _, p := range pods {
		for _, ip := range podIPs(p) {
			x.pods[ip] = api.Peer{Namespace: p.Namespace, Pod: p.Name, Workload: workloadOf(p)}
		}
	}
	if ids != nil {
		for _, id := range ids.IDs() {
			if ls, ok := ids.Labels(id); ok {
				x.labels[uint32(id)] = labelStrings(ls)
			}
		}
	}
	return x
}

// peer describes one side of a flow.
func (x *peerIndex) peer(addr netip.Addr, id uint32) api.Peer {
	var p api.Peer
	if x != nil {
		p = x.pods[addr]
		p.Labels = x.labels[id]
	}
	if p.Labels == nil {
		p.Labels = labelStrings(identity.ReservedLabels(identity.NumericIdentity(id)))
	}
	return p
}

func labelStrings(ls identity.Labels) []string {
	if len(ls) == 0 {
		return nil
	}
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.String()
	}
	return out
}

// workloadOf names a pod's controller. A ReplicaSet whose name is the pod's
// pod-template-hash label after a dash was made by a Deployment of the name
// before it, which is what users know the pod by.
func workloadOf(p *corev1.Pod) string {
	for _, o := range p.OwnerReferences {
		if o.Controller == nil || !*o.Controller {
			continue
		}
		if hash := p.Labels["pod-template-hash"]; o.Kind == "ReplicaSet" && hash != "" {
			if name, ok := strings.CutSuffix(o.Name, "-"+hash); ok {
				return "Deployment/" + name
			}
		}
		return o.Kind + "/" + o.Name
	}
	return ""
}

// addEnforcers records which policies isolate each local endpoint.
func (x *peerIndex) addEnforcers(id uint32, p *policy.EndpointPolicy) {
	var by [2][]string
	for i, origins := range [][]policy.Origin{p.IngressEnforcedBy, p.EgressEnforcedBy} {
		for _, o := range origins {
			by[i] = append(by[i], o.String())
		}
	}
	x.enforcedBy[id] = by
}

// enforcers names the policies that made endpoint id's direction
// default-deny.
func (x *peerIndex) enforcers(id uint32, d datapath.Direction) []string {
	if x == nil {
		return nil
	}
	if d == datapath.Egress {
		return x.enforcedBy[id][1]
	}
	return x.enforcedBy[id][0]
}
