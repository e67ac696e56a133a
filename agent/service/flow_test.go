package service

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// The test addresses follow kube-proxy's nftables proxier_test.go
// conventions: pods 10.0.0.0/8 (this node's own pods 10.0.0.0/24), service
// ClusterIPs 172.30.0.0/16, this node 192.168.0.2, external clients
// 203.0.113.0/24, LB source range 203.0.113.0/25.
const (
	testNodeName              = "test-node"
	testNodeIP                = "192.168.0.2"
	testNodeIPv6              = "2001:db8::1"
	testExternalClient        = "203.0.113.2"
	testExternalClientBlocked = "203.0.113.130"
)

var testLocalPods = netip.MustParsePrefix("10.0.0.0/24")

func testConfig() Config {
	return Config{
		NodeName:     testNodeName,
		NodeIPs:      []netip.Addr{netip.MustParseAddr(testNodeIP), netip.MustParseAddr(testNodeIPv6)},
		ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("172.30.0.0/16"), netip.MustParsePrefix("fd00:10:96::/112")},
	}
}

// packetFlow is kube-proxy's packetFlowTest: a new connection from sourceIP
// to destIP:destPort, and what becomes of it: "REJECT", "DROP", the
// backends it may reach ("10.0.1.1:80, 10.0.1.2:80"), or "" when no service
// rule touches it.
type packetFlow struct {
	name     string
	sourceIP string
	destIP   string
	destPort uint16
	protocol corev1.Protocol
	output   string
}

// runFlow reads the State the way the datapath is to apply it, in
// kube-proxy's order: the LoadBalancer source-range firewall first, then the
// frontend (with the Local-policy short-circuit for traffic from this node's
// pods or the node itself), then the ClusterIP port check and the
// unallocated-address drop.
func runFlow(st State, f packetFlow) string {
	src := netip.MustParseAddr(f.sourceIP)
	dst := netip.MustParseAddr(f.destIP)
	proto := f.protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	fromThisNode := testLocalPods.Contains(src) || src.String() == testNodeIP || src.String() == testNodeIPv6
	for _, fe := range st.Frontends {
		if fe.Key() != (FrontendKey{dst, f.destPort, proto}) {
			continue
		}
		if len(fe.SourceRanges) > 0 {
			allowed := false
			for _, p := range fe.SourceRanges {
				allowed = allowed || p.Contains(src)
			}
			if !allowed {
				return "DROP"
			}
		}
		action, backends := fe.Action, fe.Backends
		if fe.Kind.External() && fe.LocalOriginBackends != nil && fromThisNode {
			action, backends = Forward, fe.LocalOriginBackends
		}
		switch action {
		case Reject:
			return "REJECT"
		case Drop:
			return "DROP"
		}
		var out []string
		for _, b := range backends {
			out = append(out, b.String())
		}
		return strings.Join(out, ", ")
	}
	for _, c := range st.ClusterIPs {
		if c == dst {
			return "REJECT"
		}
	}
	for _, p := range st.ServiceCIDRs {
		if p.Contains(dst) {
			return "DROP"
		}
	}
	return ""
}

func runFlows(t *testing.T, st State, flows []packetFlow) {
	t.Helper()
	for _, f := range flows {
		if got := runFlow(st, f); got != f.output {
			t.Errorf("%s: %s -> %s:%d gives %q, want %q", f.name, f.sourceIP, f.destIP, f.destPort, got, f.output)
		}
	}
}

type svcOpt func(*corev1.Service)

func makeService(ns, name string, opts ...svcOpt) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeClusterIP,
			ClusterIP: "172.30.1.1",
			Ports:     []corev1.ServicePort{{Name: "", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
	for _, o := range opts {
		o(svc)
	}
	return svc
}

// ep is one EndpointSlice endpoint: address, node, and the three conditions
// (nil pointers where a condition is left out).
func ep(addr, node string, ready, serving, terminating *bool) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{
		Addresses:  []string{addr},
		Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving, Terminating: terminating},
	}
	if node != "" {
		e.NodeName = ptr.To(node)
	}
	return e
}

var (
	yes = ptr.To(true)
	no  = ptr.To(false)
)

// readyEP is a ready, serving, not terminating endpoint.
func readyEP(addr, node string) discoveryv1.Endpoint { return ep(addr, node, yes, yes, no) }

// termEP is a serving, terminating endpoint (kube-proxy's fallback).
func termEP(addr, node string) discoveryv1.Endpoint { return ep(addr, node, no, yes, yes) }

// deadEP is a terminating endpoint that no longer serves.
func deadEP(addr, node string) discoveryv1.Endpoint { return ep(addr, node, no, no, yes) }

func makeSlice(ns, svc string, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	at := discoveryv1.AddressTypeIPv4
	if len(eps) > 0 && strings.Contains(eps[0].Addresses[0], ":") {
		at = discoveryv1.AddressTypeIPv6
	}
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: fmt.Sprintf("%s-%s", svc, strings.ToLower(string(at))),
			Labels: map[string]string{discoveryv1.LabelServiceName: svc},
		},
		AddressType: at,
		Ports:       ports,
		Endpoints:   eps,
	}
}

func slicePort(name string, port int32, proto corev1.Protocol) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: ptr.To(name), Port: ptr.To(port), Protocol: ptr.To(proto)}
}

var port80 = []discoveryv1.EndpointPort{slicePort("", 80, corev1.ProtocolTCP)}

func build(services []*corev1.Service, slices ...*discoveryv1.EndpointSlice) State {
	return Build(Input{Config: testConfig(), Services: services, EndpointSlices: slices})
}

func mustNoStatus(t *testing.T, st State) {
	t.Helper()
	for _, s := range st.Status {
		t.Errorf("unexpected status: %s: %s", s.Object, s.Error)
	}
}

func at(sec int64) metav1.Time { return metav1.NewTime(time.Unix(sec, 0)) }
