package service

import (
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

// Mirrors TestOnlyLocalNodePorts and TestOnlyLocalExternalIPs (nftables
// proxier_test.go, with iptables' TestOnlyLocalNodePortsNoClusterCIDR for the
// host): under externalTrafficPolicy Local, outside clients reach only this
// node's endpoints, while this node's pods and the node itself reach all of
// them (kube-proxy's short-circuit), through NodePorts and externalIPs alike.
func TestExternalTrafficPolicyLocalShortCircuitsTrafficFromThisNode(t *testing.T) {
	svc := makeService("ns1", "svc1", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		s.Spec.ExternalIPs = []string{"192.168.99.11"}
		s.Spec.Ports[0].NodePort = 3001
	})
	slice := makeSlice("ns1", "svc1", port80, readyEP("10.180.0.1", testNodeName), readyEP("10.180.2.1", "host2"))
	st := build([]*corev1.Service{svc}, slice)
	mustNoStatus(t, st)
	runFlows(t, st, []packetFlow{
		{name: "pod to cluster IP", sourceIP: "10.0.0.2", destIP: "172.30.1.1", destPort: 80, output: "10.180.0.1:80, 10.180.2.1:80"},
		{name: "pod to NodePort", sourceIP: "10.0.0.2", destIP: testNodeIP, destPort: 3001, output: "10.180.0.1:80, 10.180.2.1:80"},
		{name: "external to NodePort", sourceIP: testExternalClient, destIP: testNodeIP, destPort: 3001, output: "10.180.0.1:80"},
		{name: "node to NodePort", sourceIP: testNodeIP, destIP: testNodeIP, destPort: 3001, output: "10.180.0.1:80, 10.180.2.1:80"},
		{name: "pod to externalIP", sourceIP: "10.0.0.2", destIP: "192.168.99.11", destPort: 80, output: "10.180.0.1:80, 10.180.2.1:80"},
		{name: "external to externalIP", sourceIP: testExternalClient, destIP: "192.168.99.11", destPort: 80, output: "10.180.0.1:80"},
	})

	// With no local endpoint, outside traffic drops but this node's pods
	// still reach the service (TestOnlyLocalNodePorts' second half).
	slice = makeSlice("ns1", "svc1", port80, readyEP("10.180.2.1", "host2"))
	st = build([]*corev1.Service{svc}, slice)
	runFlows(t, st, []packetFlow{
		{name: "pod to NodePort", sourceIP: "10.0.0.2", destIP: testNodeIP, destPort: 3001, output: "10.180.2.1:80"},
		{name: "external to NodePort", sourceIP: testExternalClient, destIP: testNodeIP, destPort: 3001, output: "DROP"},
		{name: "external to externalIP", sourceIP: testExternalClient, destIP: "192.168.99.11", destPort: 80, output: "DROP"},
		{name: "pod to cluster IP", sourceIP: "10.0.0.2", destIP: "172.30.1.1", destPort: 80, output: "10.180.2.1:80"},
	})
}

// Mirrors the svc5 flows of TestOverallNFTablesRules and TestLoadBalancer
// (nftables proxier_test.go): loadBalancerSourceRanges filter the LB IP, and
// NodePorts are never filtered ("for better or for worse").
func TestLoadBalancerSourceRangesFilterOnlyTheLoadBalancerIP(t *testing.T) {
	svc := makeService("ns1", "svc1", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 3001
		s.Spec.LoadBalancerSourceRanges = []string{" 203.0.113.0/25"}
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "1.2.3.4"}}
	})
	st := build([]*corev1.Service{svc}, makeSlice("ns1", "svc1", port80, readyEP("10.180.0.1", "host1")))
	mustNoStatus(t, st)
	runFlows(t, st, []packetFlow{
		{name: "allowed external to LB", sourceIP: testExternalClient, destIP: "1.2.3.4", destPort: 80, output: "10.180.0.1:80"},
		{name: "blocked external to LB", sourceIP: testExternalClientBlocked, destIP: "1.2.3.4", destPort: 80, output: "DROP"},
		{name: "blocked external to NodePort", sourceIP: testExternalClientBlocked, destIP: testNodeIP, destPort: 3001, output: "10.180.0.1:80"},
		{name: "pod to LB, not in the ranges", sourceIP: "10.0.0.2", destIP: "1.2.3.4", destPort: 80, output: "DROP"},
	})

	// A range holding the node's address also admits the LB IP itself as a
	// source: the node reaching a VIP bound on it.
	svc.Spec.LoadBalancerSourceRanges = []string{"192.168.0.0/24"}
	st = build([]*corev1.Service{svc}, makeSlice("ns1", "svc1", port80, readyEP("10.180.0.1", "host1")))
	runFlows(t, st, []packetFlow{
		{name: "LB IP as source", sourceIP: "1.2.3.4", destIP: "1.2.3.4", destPort: 80, output: "10.180.0.1:80"},
		{name: "node to LB", sourceIP: testNodeIP, destIP: "1.2.3.4", destPort: 80, output: "10.180.0.1:80"},
		{name: "outside the ranges", sourceIP: testExternalClient, destIP: "1.2.3.4", destPort: 80, output: "DROP"},
	})
}

// Mirrors the cluster-ips-check chain's flows in TestOverallNFTablesRules /
// TestClusterIPGeneral (nftables proxier_test.go): a wrong port on an
// allocated ClusterIP rejects, an unallocated address in the service range
// drops, and a service with no endpoints rejects on its own port.
func TestClusterIPWrongPortRejectsAndUnallocatedAddressDrops(t *testing.T) {
	withEPs := makeService("ns1", "svc1")
	noEPs := makeService("ns2", "svc2", func(s *corev1.Service) { s.Spec.ClusterIP = "172.30.0.46" })
	st := build([]*corev1.Service{withEPs, noEPs}, makeSlice("ns1", "svc1", port80, readyEP("10.180.0.1", "host1")))
	mustNoStatus(t, st)
	runFlows(t, st, []packetFlow{
		{name: "pod to cluster IP", sourceIP: "10.0.0.2", destIP: "172.30.1.1", destPort: 80, output: "10.180.0.1:80"},
		{name: "wrong port", sourceIP: "10.0.0.2", destIP: "172.30.1.1", destPort: 443, output: "REJECT"},
		{name: "wrong protocol", sourceIP: "10.0.0.2", destIP: "172.30.1.1", destPort: 80, protocol: corev1.ProtocolUDP, output: "REJECT"},
		{name: "service without endpoints", sourceIP: "10.0.0.2", destIP: "172.30.0.46", destPort: 80, output: "REJECT"},
		{name: "unallocated address in the range", sourceIP: "10.0.0.2", destIP: "172.30.0.99", destPort: 80, output: "DROP"},
		{name: "address outside the service ranges", sourceIP: "10.0.0.2", destIP: "198.51.100.1", destPort: 80, output: ""},
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

// Topology-aware hints, as kube-proxy's TestCategorizeEndpoints
// (pkg/proxy/topology_test.go) "hints enabled" cases: zone hints narrow the
// cluster endpoints only when every ready endpoint has one and one is for
// this node's zone.
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
