package service

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

// Mirrors TestInternalTrafficPolicy in kubernetes pkg/proxy/nftables/
// proxier_test.go: the same endpoints, flows and outputs, and the REJECT
// once the endpoints are gone.
func TestInternalTrafficPolicyPicksEndpointsAsKubeProxy(t *testing.T) {
	type endpoint struct{ ip, node string }
	cases := []struct {
		name   string
		policy *corev1.ServiceInternalTrafficPolicy
		eps    []endpoint
		output string
	}{
		{"internalTrafficPolicy Cluster reaches every endpoint",
			ptr.To(corev1.ServiceInternalTrafficPolicyCluster),
			[]endpoint{{"10.0.1.1", testNodeName}, {"10.0.1.2", "node1"}, {"10.0.1.3", "node2"}},
			"10.0.1.1:80, 10.0.1.2:80, 10.0.1.3:80"},
		{"internalTrafficPolicy Local with one local endpoint reaches only it",
			ptr.To(corev1.ServiceInternalTrafficPolicyLocal),
			[]endpoint{{"10.0.1.1", testNodeName}, {"10.0.1.2", "node1"}, {"10.0.1.3", "node2"}},
			"10.0.1.1:80"},
		{"internalTrafficPolicy Local with several local endpoints reaches them all",
			ptr.To(corev1.ServiceInternalTrafficPolicyLocal),
			[]endpoint{{"10.0.1.1", testNodeName}, {"10.0.1.2", testNodeName}, {"10.0.1.3", "node2"}},
			"10.0.1.1:80, 10.0.1.2:80"},
		{"internalTrafficPolicy Local with no local endpoint drops",
			ptr.To(corev1.ServiceInternalTrafficPolicyLocal),
			[]endpoint{{"10.0.1.1", "node0"}, {"10.0.1.2", "node1"}, {"10.0.1.3", "node2"}},
			"DROP"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			svc := makeService("ns1", "svc1", func(s *corev1.Service) { s.Spec.InternalTrafficPolicy = c.policy })
			var eps []discoveryv1.Endpoint
			for _, e := range c.eps {
				eps = append(eps, ep(e.ip, e.node, yes, nil, nil))
			}
			st := build([]*corev1.Service{svc}, makeSlice("ns1", "svc1", port80, eps...))
			mustNoStatus(t, st)
			runFlows(t, st, []packetFlow{{name: "pod to ClusterIP", sourceIP: "10.0.0.2", destIP: "172.30.1.1", destPort: 80, output: c.output}})

			st = build([]*corev1.Service{svc})
			runFlows(t, st, []packetFlow{{name: "endpoints deleted", sourceIP: "10.0.0.2", destIP: "172.30.1.1", destPort: 80, output: "REJECT"}})
		})
	}
}

func lbService(policy corev1.ServiceExternalTrafficPolicy) *corev1.Service {
	return makeService("ns1", "svc1", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = policy
		s.Spec.HealthCheckNodePort = 30000
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "1.2.3.4"}}
	})
}

// Mirrors TestTerminatingEndpointsTrafficPolicyLocal (nftables
// proxier_test.go): ready endpoints win over serving-terminating ones, the
// fallback is chosen apart for the cluster and the local lists, and a
// service whose endpoints are all unusable rejects.
func TestTerminatingEndpointsUnderExternalTrafficPolicyLocal(t *testing.T) {
	cases := []struct {
		name  string
		eps   []discoveryv1.Endpoint
		flows []packetFlow
	}{
		{
			name: "ready endpoints are used and terminating ones are not",
			eps: []discoveryv1.Endpoint{
				readyEP("10.0.1.1", testNodeName), readyEP("10.0.1.2", testNodeName),
				termEP("10.0.1.3", testNodeName), deadEP("10.0.1.4", testNodeName),
				readyEP("10.0.1.5", "node-1"),
			},
			flows: []packetFlow{
				{name: "pod to clusterIP", sourceIP: "10.0.0.2", destIP: "172.30.1.1", destPort: 80, output: "10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80"},
				{name: "external to LB", sourceIP: testExternalClient, destIP: "1.2.3.4", destPort: 80, output: "10.0.1.1:80, 10.0.1.2:80"},
			},
		},
		{
			name: "with only terminating local endpoints external traffic falls back to them",
			eps: []discoveryv1.Endpoint{
				termEP("10.0.1.2", testNodeName), termEP("10.0.1.3", testNodeName),
				deadEP("10.0.1.4", testNodeName), readyEP("10.0.1.5", "node-1"),
			},
			flows: []packetFlow{
				{name: "pod to clusterIP", sourceIP: "10.0.0.2", destIP: "172.30.1.1", destPort: 80, output: "10.0.1.5:80"},
				{name: "external to LB", sourceIP: testExternalClient, destIP: "1.2.3.4", destPort: 80, output: "10.0.1.2:80, 10.0.1.3:80"},
			},
		},
		{
			name: "a terminating endpoint on another node serves pods but external traffic drops",
			eps:  []discoveryv1.Endpoint{termEP("10.0.1.5", "node-1")},
			flows: []packetFlow{
				{name: "pod to clusterIP", sourceIP: "10.0.0.2", destIP: "172.30.1.1", destPort: 80, output: "10.0.1.5:80"},
				{name: "external to LB, no locally-usable endpoints", sourceIP: testExternalClient, destIP: "1.2.3.4", destPort: 80, output: "DROP"},
			},
		},
		{
			name: "no usable endpoint on any node rejects",
			eps:  []discoveryv1.Endpoint{deadEP("10.0.1.5", testNodeName), deadEP("10.0.1.5", "node-1")},
			flows: []packetFlow{
				{name: "pod to clusterIP, no usable endpoints", sourceIP: "10.0.0.2", destIP: "172.30.1.1", destPort: 80, output: "REJECT"},
				{name: "external to LB, no usable endpoints", sourceIP: testExternalClient, destIP: "1.2.3.4", destPort: 80, output: "REJECT"},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			svc := lbService(corev1.ServiceExternalTrafficPolicyLocal)
			st := build([]*corev1.Service{svc}, makeSlice("ns1", "svc1", port80, c.eps...))
			mustNoStatus(t, st)
			runFlows(t, st, c.flows)
			st = build([]*corev1.Service{svc})
			runFlows(t, st, []packetFlow{
				{name: "pod to clusterIP after endpoints deleted", sourceIP: "10.0.0.2", destIP: "172.30.1.1", destPort: 80, output: "REJECT"},
				{name: "external to LB after endpoints deleted", sourceIP: testExternalClient, destIP: "1.2.3.4", destPort: 80, output: "REJECT"},
			})
		})
	}
}

// Mirrors TestTerminatingEndpointsTrafficPolicyCluster (nftables
// proxier_test.go): with Cluster policy internal and external traffic reach
// the same endpoints.
func TestTerminatingEndpointsUnderExternalTrafficPolicyCluster(t *testing.T) {
	cases := []struct {
		name   string
		eps    []discoveryv1.Endpoint
		output string
	}{
		{"ready endpoints are used and terminating ones are not",
			[]discoveryv1.Endpoint{
				readyEP("10.0.1.1", testNodeName), readyEP("10.0.1.2", testNodeName),
				termEP("10.0.1.3", "another-node"), deadEP("10.0.1.4", "another-node"),
				readyEP("10.0.1.5", "another-node"),
			},
			"10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80"},
		{"with only terminating endpoints the serving ones are used",
			[]discoveryv1.Endpoint{
				termEP("10.0.1.2", testNodeName), termEP("10.0.1.3", testNodeName),
				deadEP("10.0.1.4", "another-node"), termEP("10.0.1.5", "another-node"),
			},
			"10.0.1.2:80, 10.0.1.3:80, 10.0.1.5:80"},
		{"a terminating endpoint on another node is used",
			[]discoveryv1.Endpoint{termEP("10.0.1.5", "another-node")},
			"10.0.1.5:80"},
		{"no usable endpoint on any node rejects",
			[]discoveryv1.Endpoint{deadEP("10.0.1.5", testNodeName), deadEP("10.0.1.5", "another-node")},
			"REJECT"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := build([]*corev1.Service{lbService(corev1.ServiceExternalTrafficPolicyCluster)}, makeSlice("ns1", "svc1", port80, c.eps...))
			mustNoStatus(t, st)
			runFlows(t, st, []packetFlow{
				{name: "pod to clusterIP", sourceIP: "10.0.0.2", destIP: "172.30.1.1", destPort: 80, output: c.output},
				{name: "external to LB", sourceIP: testExternalClient, destIP: "1.2.3.4", destPort: 80, output: c.output},
			})
		})
	}
}

// etpService is the service of TestExternalTrafficPolicyLocal and
// TestExternalTrafficPolicyCluster (nftables proxier_test.go): a
// LoadBalancer with an externalIP and a NodePort.
func etpService(policy corev1.ServiceExternalTrafficPolicy) *corev1.Service {
	return makeService("ns1", "svc1", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = policy
		s.Spec.ClusterIP = "172.30.0.41"
		s.Spec.ExternalIPs = []string{"192.168.99.11"}
		s.Spec.Ports = []corev1.ServicePort{{Name: "p80", Port: 80, Protocol: corev1.ProtocolTCP, NodePort: 3001}}
		s.Spec.HealthCheckNodePort = 30000
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "1.2.3.4"}}
	})
}

var p80 = []discoveryv1.EndpointPort{slicePort("p80", 80, corev1.ProtocolTCP)}

// Mirrors TestExternalTrafficPolicyLocal (nftables proxier_test.go): outside
// clients reach only this node's endpoint through the externalIP, the LB IP
// and the NodePort, while this node's pods reach both endpoints through all
// of them (kube-proxy's short-circuit). The endpoint without a nodeName is
// remote.
func TestExternalTrafficPolicyLocalShortCircuitsTrafficFromThisNode(t *testing.T) {
	slice := makeSlice("ns1", "svc1", p80, ep("10.180.0.1", "", nil, nil, nil), ep("10.180.2.1", testNodeName, nil, nil, nil))
	st := build([]*corev1.Service{etpService(corev1.ServiceExternalTrafficPolicyLocal)}, slice)
	mustNoStatus(t, st)
	both, local := "10.180.0.1:80, 10.180.2.1:80", "10.180.2.1:80"
	runFlows(t, st, []packetFlow{
		{name: "pod to cluster IP hits both endpoints", sourceIP: "10.0.0.2", destIP: "172.30.0.41", destPort: 80, output: both},
		{name: "pod to external IP hits both endpoints", sourceIP: "10.0.0.2", destIP: "192.168.99.11", destPort: 80, output: both},
		{name: "external to external IP hits only local endpoint", sourceIP: testExternalClient, destIP: "192.168.99.11", destPort: 80, output: local},
		{name: "pod to LB IP hits both endpoints", sourceIP: "10.0.0.2", destIP: "1.2.3.4", destPort: 80, output: both},
		{name: "external to LB IP hits only local endpoint", sourceIP: testExternalClient, destIP: "1.2.3.4", destPort: 80, output: local},
		{name: "pod to NodePort hits both endpoints", sourceIP: "10.0.0.2", destIP: testNodeIP, destPort: 3001, output: both},
		{name: "external to NodePort hits only local endpoint", sourceIP: testExternalClient, destIP: testNodeIP, destPort: 3001, output: local},
		{name: "node to NodePort hits both endpoints", sourceIP: testNodeIP, destIP: testNodeIP, destPort: 3001, output: both},
	})

	// With no local endpoint, kube-proxy's external verdict is "drop" while
	// the short-circuit still takes this node's pods to the service.
	slice = makeSlice("ns1", "svc1", p80, ep("10.180.0.1", "", nil, nil, nil))
	st = build([]*corev1.Service{etpService(corev1.ServiceExternalTrafficPolicyLocal)}, slice)
	runFlows(t, st, []packetFlow{
		{name: "pod to NodePort", sourceIP: "10.0.0.2", destIP: testNodeIP, destPort: 3001, output: "10.180.0.1:80"},
		{name: "external to NodePort", sourceIP: testExternalClient, destIP: testNodeIP, destPort: 3001, output: "DROP"},
		{name: "external to external IP", sourceIP: testExternalClient, destIP: "192.168.99.11", destPort: 80, output: "DROP"},
		{name: "external to LB IP", sourceIP: testExternalClient, destIP: "1.2.3.4", destPort: 80, output: "DROP"},
		{name: "pod to cluster IP", sourceIP: "10.0.0.2", destIP: "172.30.0.41", destPort: 80, output: "10.180.0.1:80"},
	})
}

// Mirrors TestExternalTrafficPolicyCluster (nftables proxier_test.go): every
// source reaches both endpoints through every frontend.
func TestExternalTrafficPolicyClusterReachesEveryEndpointFromAnywhere(t *testing.T) {
	slice := makeSlice("ns1", "svc1", p80, ep("10.180.0.1", "", nil, nil, nil), ep("10.180.2.1", testNodeName, nil, nil, nil))
	st := build([]*corev1.Service{etpService(corev1.ServiceExternalTrafficPolicyCluster)}, slice)
	mustNoStatus(t, st)
	var flows []packetFlow
	for _, src := range []string{"10.0.0.2", testExternalClient} {
		for _, dst := range []struct {
			ip   string
			port uint16
		}{{"172.30.0.41", 80}, {"192.168.99.11", 80}, {"1.2.3.4", 80}, {testNodeIP, 3001}} {
			if src == testExternalClient && dst.ip == "172.30.0.41" {
				continue
			}
			flows = append(flows, packetFlow{name: src + " to " + dst.ip, sourceIP: src, destIP: dst.ip, destPort: dst.port, output: "10.180.0.1:80, 10.180.2.1:80"})
		}
	}
	runFlows(t, st, flows)
	if len(st.HealthChecks) != 0 {
		t.Errorf("a Cluster-policy service got health checks %+v", st.HealthChecks)
	}
}

// Mirrors TestNodePorts (nftables proxier_test.go), the cases without
// --nodeport-addresses: NodePorts answer on the node's primary address of
// the family and not on a secondary one.
func TestNodePortsAnswerOnTheNodeAddresses(t *testing.T) {
	cases := []struct {
		name, svcIP, ep1, ep2, podIP, client, nodeIP, altNodeIP string
	}{
		{"ipv4", "172.30.0.41", "10.180.0.1", "10.180.2.1", "10.0.0.2", testExternalClient, testNodeIP, "192.168.1.2"},
		{"ipv6", "fd00:172:30::41", "fd00:10:180::1", "fd00:10:180::2:1", "fd00:10::2", "2600:5200::1", testNodeIPv6, "2001:db8:1::2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			svc := makeService("ns1", "svc1", func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeNodePort
				s.Spec.ClusterIP, s.Spec.ClusterIPs = c.svcIP, []string{c.svcIP}
				s.Spec.Ports = []corev1.ServicePort{{Name: "p80", Port: 80, Protocol: corev1.ProtocolTCP, NodePort: 3001}}
			})
			slice := makeSlice("ns1", "svc1", p80, ep(c.ep1, "", nil, nil, nil), ep(c.ep2, testNodeName, nil, nil, nil))
			st := build([]*corev1.Service{svc}, slice)
			mustNoStatus(t, st)
			out := netip.AddrPortFrom(netip.MustParseAddr(c.ep1), 80).String() + ", " + netip.AddrPortFrom(netip.MustParseAddr(c.ep2), 80).String()
			runFlows(t, st, []packetFlow{
				{name: "pod to cluster IP", sourceIP: c.podIP, destIP: c.svcIP, destPort: 80, output: out},
				{name: "external to nodePort", sourceIP: c.client, destIP: c.nodeIP, destPort: 3001, output: out},
				{name: "node to nodePort", sourceIP: c.nodeIP, destIP: c.nodeIP, destPort: 3001, output: out},
				{name: "secondary nodeIP ignores NodePorts", sourceIP: c.client, destIP: c.altNodeIP, destPort: 3001, output: ""},
			})
		})
	}
}

// Mirrors TestLoadBalancer (nftables proxier_test.go): loadBalancerSourceRanges
// (whitespace and all) filter both LB IPs for every source, pods included;
// NodePorts bypass them; a range holding the node's address admits the node
// and the LB IPs themselves as sources.
func TestLoadBalancerSourceRangesFilterOnlyTheLoadBalancerIPs(t *testing.T) {
	svc := makeService("ns1", "svc1", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.ClusterIP = "172.30.0.41"
		s.Spec.Ports = []corev1.ServicePort{{Name: "p80", Port: 80, Protocol: corev1.ProtocolTCP, NodePort: 3001}}
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "1.2.3.4"}, {IP: "5.6.7.8"}}
		s.Spec.LoadBalancerSourceRanges = []string{"192.168.0.0/24", " 203.0.113.0/25"}
	})
	st := build([]*corev1.Service{svc}, makeSlice("ns1", "svc1", p80, ep("10.180.0.1", "", nil, nil, nil)))
	mustNoStatus(t, st)
	const out = "10.180.0.1:80"
	runFlows(t, st, []packetFlow{
		{name: "pod to cluster IP", sourceIP: "10.0.0.2", destIP: "172.30.0.41", destPort: 80, output: out},
		{name: "external to nodePort", sourceIP: testExternalClient, destIP: testNodeIP, destPort: 3001, output: out},
		{name: "nodePort bypasses LoadBalancerSourceRanges", sourceIP: testExternalClientBlocked, destIP: testNodeIP, destPort: 3001, output: out},
		{name: "accepted external to LB1", sourceIP: testExternalClient, destIP: "1.2.3.4", destPort: 80, output: out},
		{name: "accepted external to LB2", sourceIP: testExternalClient, destIP: "5.6.7.8", destPort: 80, output: out},
		{name: "blocked external to LB1", sourceIP: testExternalClientBlocked, destIP: "1.2.3.4", destPort: 80, output: "DROP"},
		{name: "blocked external to LB2", sourceIP: testExternalClientBlocked, destIP: "5.6.7.8", destPort: 80, output: "DROP"},
		{name: "pod to LB1 (blocked by LoadBalancerSourceRanges)", sourceIP: "10.0.0.2", destIP: "1.2.3.4", destPort: 80, output: "DROP"},
		{name: "pod to LB2 (blocked by LoadBalancerSourceRanges)", sourceIP: "10.0.0.2", destIP: "5.6.7.8", destPort: 80, output: "DROP"},
		{name: "node to LB1 (allowed by LoadBalancerSourceRanges)", sourceIP: testNodeIP, destIP: "1.2.3.4", destPort: 80, output: out},
		{name: "node to LB2 (allowed by LoadBalancerSourceRanges)", sourceIP: testNodeIP, destIP: "5.6.7.8", destPort: 80, output: out},
		{name: "same node to LB1, SNATted to LB1 (implicitly allowed)", sourceIP: "1.2.3.4", destIP: "1.2.3.4", destPort: 80, output: out},
		{name: "same node to LB2, SNATted to LB2 (implicitly allowed)", sourceIP: "5.6.7.8", destIP: "5.6.7.8", destPort: 80, output: out},
	})

	// Without a range holding the node, the LB IPs are not admitted as
	// sources either.
	svc.Spec.LoadBalancerSourceRanges = []string{"203.0.113.0/25"}
	st = build([]*corev1.Service{svc}, makeSlice("ns1", "svc1", p80, ep("10.180.0.1", "", nil, nil, nil)))
	runFlows(t, st, []packetFlow{
		{name: "LB IP as source", sourceIP: "1.2.3.4", destIP: "1.2.3.4", destPort: 80, output: "DROP"},
		{name: "node to LB", sourceIP: testNodeIP, destIP: "1.2.3.4", destPort: 80, output: "DROP"},
	})
}

// Mirrors TestNoEndpointsReject (nftables proxier_test.go): a service with
// no endpoints rejects on its ClusterIP, externalIP, NodePort and LB IP,
// from pods and from outside alike.
func TestNoEndpointsRejectOnEveryFrontend(t *testing.T) {
	st := build([]*corev1.Service{etpService(corev1.ServiceExternalTrafficPolicyCluster)})
	mustNoStatus(t, st)
	runFlows(t, st, []packetFlow{
		{name: "pod to cluster IP with no endpoints", sourceIP: "10.0.0.2", destIP: "172.30.0.41", destPort: 80, output: "REJECT"},
		{name: "external to external IP with no endpoints", sourceIP: testExternalClient, destIP: "192.168.99.11", destPort: 80, output: "REJECT"},
		{name: "pod to NodePort with no endpoints", sourceIP: "10.0.0.2", destIP: testNodeIP, destPort: 3001, output: "REJECT"},
		{name: "external to NodePort with no endpoints", sourceIP: testExternalClient, destIP: testNodeIP, destPort: 3001, output: "REJECT"},
		{name: "pod to LoadBalancer IP with no endpoints", sourceIP: "10.0.0.2", destIP: "1.2.3.4", destPort: 80, output: "REJECT"},
		{name: "external to LoadBalancer IP with no endpoints", sourceIP: testExternalClient, destIP: "1.2.3.4", destPort: 80, output: "REJECT"},
	})
}

// Mirrors TestClusterIPGeneral (nftables proxier_test.go): several ports and
// protocols on one ClusterIP, target ports from the slices, a wrong port or
// protocol on an allocated ClusterIP rejected (cluster-ips-check), and an
// unallocated address in the service range dropped. Hairpin (an endpoint
// reaching itself) is a datapath matter: here it is just a backend.
func TestClusterIPGeneral(t *testing.T) {
	svc1 := makeService("ns1", "svc1", func(s *corev1.Service) {
		s.Spec.ClusterIP = "172.30.0.41"
		s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}
	})
	svc2 := makeService("ns2", "svc2", func(s *corev1.Service) {
		s.Spec.ClusterIP = "172.30.0.42"
		s.Spec.Ports = []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
			{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP},
			{Name: "dns-udp", Port: 53, Protocol: corev1.ProtocolUDP},
			{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP},
			{Name: "dns-sctp", Port: 53, Protocol: corev1.ProtocolSCTP},
		}
	})
	slice1 := makeSlice("ns1", "svc1", []discoveryv1.EndpointPort{slicePort("http", 80, corev1.ProtocolTCP)},
		ep("10.180.0.1", testNodeName, nil, nil, nil))
	slice2 := makeSlice("ns2", "svc2", []discoveryv1.EndpointPort{
		slicePort("http", 80, corev1.ProtocolTCP),
		slicePort("https", 8443, corev1.ProtocolTCP),
		slicePort("dns-udp", 53, corev1.ProtocolUDP),
		slicePort("dns-tcp", 5353, corev1.ProtocolTCP),
		slicePort("dns-sctp", 53, corev1.ProtocolSCTP),
	}, ep("10.180.0.1", testNodeName, nil, nil, nil), ep("10.180.2.1", "node2", nil, nil, nil))
	st := build([]*corev1.Service{svc1, svc2}, slice1, slice2)
	mustNoStatus(t, st)
	runFlows(t, st, []packetFlow{
		{name: "simple clusterIP", sourceIP: "10.180.0.2", destIP: "172.30.0.41", destPort: 80, output: "10.180.0.1:80"},
		{name: "hairpin to cluster IP", sourceIP: "10.180.0.1", destIP: "172.30.0.41", destPort: 80, output: "10.180.0.1:80"},
		{name: "clusterIP with multiple endpoints", sourceIP: "10.180.0.2", destIP: "172.30.0.42", destPort: 80, output: "10.180.0.1:80, 10.180.2.1:80"},
		{name: "clusterIP with TargetPort", sourceIP: "10.180.0.2", destIP: "172.30.0.42", destPort: 443, output: "10.180.0.1:8443, 10.180.2.1:8443"},
		{name: "TCP, UDP and SCTP on the same port (TCP)", sourceIP: "10.180.0.2", protocol: corev1.ProtocolTCP, destIP: "172.30.0.42", destPort: 53, output: "10.180.0.1:5353, 10.180.2.1:5353"},
		{name: "TCP, UDP and SCTP on the same port (UDP)", sourceIP: "10.180.0.2", protocol: corev1.ProtocolUDP, destIP: "172.30.0.42", destPort: 53, output: "10.180.0.1:53, 10.180.2.1:53"},
		{name: "TCP, UDP and SCTP on the same port (SCTP)", sourceIP: "10.180.0.2", protocol: corev1.ProtocolSCTP, destIP: "172.30.0.42", destPort: 53, output: "10.180.0.1:53, 10.180.2.1:53"},
		{name: "TCP-only port does not match UDP traffic", sourceIP: "10.180.0.2", protocol: corev1.ProtocolUDP, destIP: "172.30.0.42", destPort: 80, output: "REJECT"},
		{name: "svc1 does not accept svc2's ports", sourceIP: "10.180.0.2", destIP: "172.30.0.41", destPort: 443, output: "REJECT"},
		{name: "packet to unallocated cluster ip", sourceIP: "10.180.0.2", destIP: "172.30.0.50", destPort: 80, output: "DROP"},
		{name: "address outside the service ranges", sourceIP: "10.180.0.2", destIP: "198.51.100.1", destPort: 80, output: ""},
	})
}

// Mirrors TestHealthCheckNodePortWhenTerminating (nftables proxier_test.go):
// the health check counts local ready endpoints only, so it fails once every
// local endpoint is terminating.
func TestHealthCheckNodePortCountsOnlyLocalReadyEndpoints(t *testing.T) {
	svc := lbService(corev1.ServiceExternalTrafficPolicyLocal)
	ready := makeSlice("ns1", "svc1", port80,
		readyEP("10.0.1.1", testNodeName), readyEP("10.0.1.2", testNodeName),
		readyEP("10.0.1.3", testNodeName), ep("10.0.1.4", testNodeName, no, nil, nil))
	st := build([]*corev1.Service{svc}, ready)
	mustNoStatus(t, st)
	if len(st.HealthChecks) != 1 || st.HealthChecks[0].Port != 30000 || st.HealthChecks[0].LocalEndpoints != 3 {
		t.Fatalf("health checks %+v, want port 30000 with 3 local endpoints", st.HealthChecks)
	}
	terminating := makeSlice("ns1", "svc1", port80,
		ep("10.0.1.1", testNodeName, no, yes, no), termEP("10.0.1.2", testNodeName),
		termEP("10.0.1.3", testNodeName), deadEP("10.0.1.4", testNodeName))
	st = build([]*corev1.Service{svc}, terminating)
	if len(st.HealthChecks) != 1 || st.HealthChecks[0].LocalEndpoints != 0 {
		t.Fatalf("health checks %+v, want port 30000 with no local endpoint", st.HealthChecks)
	}

	// Cluster policy needs no health check.
	st = build([]*corev1.Service{lbService(corev1.ServiceExternalTrafficPolicyCluster)}, ready)
	if len(st.HealthChecks) != 0 {
		t.Fatalf("a Cluster-policy service got health checks %+v", st.HealthChecks)
	}
}

// Topology-aware hints end to end, from the slices' hints.forZones through
// Build (categorize_test.go mirrors kube-proxy's TestCategorizeEndpoints):
// zone hints narrow the cluster endpoints only when every ready endpoint has
// one and one is for this node's zone.
func TestZoneHintsNarrowClusterEndpointsOnlyWhenComplete(t *testing.T) {
	hinted := func(addr, zone string) discoveryv1.Endpoint {
		e := readyEP(addr, "other")
		if zone != "" {
			e.Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: zone}}}
		}
		return e
	}
	cases := []struct {
		name     string
		nodeZone string
		eps      []discoveryv1.Endpoint
		output   string
	}{
		{"hints for this zone narrow to it", "zone-a",
			[]discoveryv1.Endpoint{hinted("10.1.2.3", "zone-a"), hinted("10.1.2.4", "zone-b"), hinted("10.1.2.5", "zone-a")},
			"10.1.2.3:80, 10.1.2.5:80"},
		{"a ready endpoint without a hint turns hints off", "zone-a",
			[]discoveryv1.Endpoint{hinted("10.1.2.3", "zone-a"), hinted("10.1.2.4", "")},
			"10.1.2.3:80, 10.1.2.4:80"},
		{"no endpoint for this zone turns hints off", "zone-c",
			[]discoveryv1.Endpoint{hinted("10.1.2.3", "zone-a"), hinted("10.1.2.4", "zone-b")},
			"10.1.2.3:80, 10.1.2.4:80"},
		{"a node without a zone ignores hints", "",
			[]discoveryv1.Endpoint{hinted("10.1.2.3", "zone-a"), hinted("10.1.2.4", "zone-b")},
			"10.1.2.3:80, 10.1.2.4:80"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.NodeZone = c.nodeZone
			st := Build(Input{Config: cfg, Services: []*corev1.Service{makeService("ns1", "svc1")},
				EndpointSlices: []*discoveryv1.EndpointSlice{makeSlice("ns1", "svc1", port80, c.eps...)}})
			runFlows(t, st, []packetFlow{{name: "pod to ClusterIP", sourceIP: "10.0.0.2", destIP: "172.30.1.1", destPort: 80, output: c.output}})
		})
	}
}
