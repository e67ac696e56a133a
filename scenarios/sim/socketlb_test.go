package sim

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kestrelnet/kestrel/scenarios/engine"
)

// A node's own connection to a service needs socket LB; a pod's, or a node's
// to another node's NodePort, or to a plain address, does not.
func TestNeedsSocketLB(t *testing.T) {
	pod := &corev1.Pod{}
	cases := []struct {
		name string
		p    engine.Probe
		want bool
	}{
		{"node to a ClusterIP", engine.Probe{From: engine.Peer{Node: "node-1"}, To: engine.Peer{Service: "svc/web"}}, true},
		{"node to its own NodePort", engine.Probe{From: engine.Peer{Node: "node-1"}, To: engine.Peer{Node: "node-1", Frontend: "web/web"}}, true},
		{"node to another node's NodePort", engine.Probe{From: engine.Peer{Node: "node-2"}, To: engine.Peer{Node: "node-1", Frontend: "web/web"}}, false},
		{"node to a LoadBalancer IP", engine.Probe{From: engine.Peer{Node: "node-1"}, To: engine.Peer{Frontend: "web/web"}}, true},
		{"node to its own address, no service", engine.Probe{From: engine.Peer{Node: "node-1"}, To: engine.Peer{Node: "node-1"}}, false},
		{"pod to a ClusterIP", engine.Probe{From: engine.Peer{Pod: pod}, To: engine.Peer{Service: "svc/web"}}, false},
		{"world to a NodePort", engine.Probe{From: engine.Peer{Via: "node-1"}, To: engine.Peer{Node: "node-1", Frontend: "web/web"}}, false},
	}
	for _, c := range cases {
		if got := needsSocketLB(c.p); got != c.want {
			t.Errorf("%s: needsSocketLB = %v, want %v", c.name, got, c.want)
		}
	}
}
