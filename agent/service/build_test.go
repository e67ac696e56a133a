package service

import (
	"fmt"
	"math/rand"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

// frontendsOf lists a State's frontends as "kind addr:port/proto -> action
// backends" lines, so expectations read as a table.
func frontendsOf(st State) []string {
	var out []string
	for _, f := range st.Frontends {
		line := fmt.Sprintf("%s %s %s", f.Kind, f.Key(), f.Action)
		for _, b := range f.Backends {
			line += " " + b.String()
		}
		out = append(out, line)
	}
	return out
}

func sameLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("frontends:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestEveryKindOfFrontendComesFromItsField(t *testing.T) {
	svc := makeService("ns1", "svc1", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.ExternalIPs = []string{"192.168.99.22"}
		s.Spec.Ports = []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, NodePort: 30080},
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, NodePort: 30053},
			{Name: "sig", Port: 9000, Protocol: corev1.ProtocolSCTP},
		}
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{
			{IP: "1.2.3.4"},
			{IP: "5.6.7.8", IPMode: ptr.To(corev1.LoadBalancerIPModeProxy)},
			{Hostname: "lb.example.com"},
		}
	})
	slice := makeSlice("ns1", "svc1", []discoveryv1.EndpointPort{
		slicePort("http", 8080, corev1.ProtocolTCP),
		slicePort("dns", 5353, corev1.ProtocolUDP),
		slicePort("sig", 9001, corev1.ProtocolSCTP),
	}, readyEP("10.0.1.1", "node1"))
	st := build([]*corev1.Service{svc}, slice)
	mustNoStatus(t, st)
	sameLines(t, frontendsOf(st), []string{
		"LoadBalancer 1.2.3.4:53/UDP forward 10.0.1.1:5353",
		"LoadBalancer 1.2.3.4:80/TCP forward 10.0.1.1:8080",
		"LoadBalancer 1.2.3.4:9000/SCTP forward 10.0.1.1:9001",
		"ClusterIP 172.30.1.1:53/UDP forward 10.0.1.1:5353",
		"ClusterIP 172.30.1.1:80/TCP forward 10.0.1.1:8080",
		"ClusterIP 172.30.1.1:9000/SCTP forward 10.0.1.1:9001",
		"NodePort 192.168.0.2:30053/UDP forward 10.0.1.1:5353",
		"NodePort 192.168.0.2:30080/TCP forward 10.0.1.1:8080",
		"ExternalIP 192.168.99.22:53/UDP forward 10.0.1.1:5353",
		"ExternalIP 192.168.99.22:80/TCP forward 10.0.1.1:8080",
		"ExternalIP 192.168.99.22:9000/SCTP forward 10.0.1.1:9001",
	})
	if want := []netip.Addr{netip.MustParseAddr("172.30.1.1")}; !reflect.DeepEqual(st.ClusterIPs, want) {
		t.Errorf("ClusterIPs %v, want %v", st.ClusterIPs, want)
	}
	if st.Backends != 3 {
		t.Errorf("%d distinct backends, want 3 (one per port and protocol)", st.Backends)
	}
}

// The EndpointSlice controller resolves a named targetPort per pod and
// writes the number under the Service port's name; kube-proxy (and this
// package) join on that name, never reading targetPort.
func TestNamedTargetPortsResolveThroughTheSlicePorts(t *testing.T) {
	svc := makeService("ns1", "svc1", func(s *corev1.Service) {
		s.Spec.Ports = []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", Port: 9090, Protocol: corev1.ProtocolTCP},
		}
		s.Spec.Ports[0].TargetPort.StrVal = "web"
	})
	slices := []*discoveryv1.EndpointSlice{
		makeSlice("ns1", "svc1", []discoveryv1.EndpointPort{slicePort("http", 8080, corev1.ProtocolTCP)}, readyEP("10.0.1.1", "n1")),
		// Pods that name the port differently get their own slice.
		makeSlice("ns1", "svc1", []discoveryv1.EndpointPort{slicePort("http", 8081, corev1.ProtocolTCP)}, readyEP("10.0.1.2", "n2")),
		// A slice keyed by the targetPort's name matches no Service port.
		makeSlice("ns1", "svc1", []discoveryv1.EndpointPort{slicePort("web", 7000, corev1.ProtocolTCP)}, readyEP("10.0.1.3", "n3")),
	}
	slices[1].Name, slices[2].Name = "svc1-b", "svc1-c"
	st := build([]*corev1.Service{svc}, slices...)
	mustNoStatus(t, st)
	runFlows(t, st, []packetFlow{
		{name: "http", sourceIP: "10.0.0.2", destIP: "172.30.1.1", destPort: 80, output: "10.0.1.1:8080, 10.0.1.2:8081"},
		{name: "metrics has no endpoints", sourceIP: "10.0.0.2", destIP: "172.30.1.1", destPort: 9090, output: "REJECT"},
	})
}

func TestFamiliesFollowClusterIPs(t *testing.T) {
	dual := makeService("ns1", "dual", func(s *corev1.Service) {
		s.Spec.ClusterIP = "172.30.1.1"
		s.Spec.ClusterIPs = []string{"172.30.1.1", "fd00:10:96::1"}
		s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyRequireDualStack)
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.ExternalIPs = []string{"192.168.99.1", "2001:db8:99::1"}
	})
	v6only := makeService("ns1", "v6", func(s *corev1.Service) {
		s.Spec.ClusterIP = "fd00:10:96::2"
		s.Spec.ClusterIPs = []string{"fd00:10:96::2"}
	})
	st := build([]*corev1.Service{dual, v6only},
		makeSlice("ns1", "dual", port80, readyEP("10.0.1.1", "n1")),
		makeSlice("ns1", "dual", port80, readyEP("fd00:10::1", "n1")),
		// An IPv4 slice of an IPv6-only service has nowhere to go.
		makeSlice("ns1", "v6", port80, readyEP("10.0.1.9", "n1")),
	)
	mustNoStatus(t, st)
	sameLines(t, frontendsOf(st), []string{
		"ClusterIP 172.30.1.1:80/TCP forward 10.0.1.1:80",
		"NodePort 192.168.0.2:30080/TCP forward 10.0.1.1:80",
		"ExternalIP 192.168.99.1:80/TCP forward 10.0.1.1:80",
		"NodePort [2001:db8::1]:30080/TCP forward [fd00:10::1]:80",
		"ExternalIP [2001:db8:99::1]:80/TCP forward [fd00:10::1]:80",
		"ClusterIP [fd00:10:96::1]:80/TCP forward [fd00:10::1]:80",
		"ClusterIP [fd00:10:96::2]:80/TCP reject",
	})
}

func TestServicesWithoutAClusterIPGetNoFrontend(t *testing.T) {
	headless := makeService("ns1", "headless", func(s *corev1.Service) {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
	})
	external := makeService("ns1", "ext", func(s *corev1.Service) {
		s.Spec.Type, s.Spec.ClusterIP, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "", "example.com"
	})
	st := build([]*corev1.Service{headless, external}, makeSlice("ns1", "headless", port80, readyEP("10.0.1.1", "n1")))
	mustNoStatus(t, st)
	if len(st.Frontends) != 0 || len(st.ClusterIPs) != 0 {
		t.Fatalf("headless and ExternalName services gave %v, ClusterIPs %v", frontendsOf(st), st.ClusterIPs)
	}
}

func TestSessionAffinityCarriesItsTimeout(t *testing.T) {
	svc := makeService("ns1", "svc1", func(s *corev1.Service) {
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](300)}}
	})
	st := build([]*corev1.Service{svc}, makeSlice("ns1", "svc1", port80, readyEP("10.0.1.1", "n1")))
	if len(st.Frontends) != 1 || st.Frontends[0].AffinityTimeout != 300*time.Second {
		t.Fatalf("frontends %+v, want one with a 5m affinity", st.Frontends)
	}
	svc.Spec.SessionAffinityConfig = nil
	st = build([]*corev1.Service{svc})
	if st.Frontends[0].AffinityTimeout != 3*time.Hour {
		t.Fatalf("affinity %v without a config, want the API default of 3h", st.Frontends[0].AffinityTimeout)
	}
}

// As kube-proxy's EndpointSliceCache: slices without the service-name label
// and slices of other address types are ignored, only the first address of
// an endpoint counts, and an endpoint in two slices is kept once, as local
// if either copy says so.
func TestSlicesAreReadAsKubeProxyReadsThem(t *testing.T) {
	svc := makeService("ns1", "svc1", func(s *corev1.Service) {
		s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
	})
	a := makeSlice("ns1", "svc1", port80, readyEP("10.0.1.1", "elsewhere"))
	b := makeSlice("ns1", "svc1", port80, readyEP("10.0.1.1", testNodeName))
	b.Name = "svc1-b"
	unlabelled := makeSlice("ns1", "svc1", port80, readyEP("10.0.1.7", testNodeName))
	unlabelled.Name, unlabelled.Labels = "stray", nil
	fqdn := makeSlice("ns1", "svc1", port80, readyEP("10.0.1.8", testNodeName))
	fqdn.Name, fqdn.AddressType = "fqdn", discoveryv1.AddressTypeFQDN
	two := makeSlice("ns1", "svc1", port80, discoveryv1.Endpoint{Addresses: []string{"10.0.1.2", "10.0.1.3"}, NodeName: ptr.To(testNodeName)})
	two.Name = "svc1-two"
	st := build([]*corev1.Service{svc}, a, b, unlabelled, fqdn, two)
	mustNoStatus(t, st)
	runFlows(t, st, []packetFlow{{name: "pod to ClusterIP", sourceIP: "10.0.0.2", destIP: "172.30.1.1", destPort: 80, output: "10.0.1.1:80, 10.0.1.2:80"}})
}

// publishNotReadyAddresses is honoured where kube-proxy honours it: the
// EndpointSlice controller writes ready=true for every endpoint of such a
// service, and the slice's conditions are taken as written.
func TestConditionsAreTakenAsWrittenWhateverPublishNotReadyAddressesSays(t *testing.T) {
	svc := makeService("ns1", "svc1", func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true })
	st := build([]*corev1.Service{svc}, makeSlice("ns1", "svc1", port80,
		ep("10.0.1.1", "n1", yes, no, no), // what the controller writes for an unready pod
		ep("10.0.1.2", "n1", no, no, no)))
	runFlows(t, st, []packetFlow{{name: "pod to ClusterIP", sourceIP: "10.0.0.2", destIP: "172.30.1.1", destPort: 80, output: "10.0.1.1:80"}})
}

func TestCollidingServicesAreLeftOutWholeAndTheOlderKeepsTheFrontend(t *testing.T) {
	older := makeService("ns1", "older", func(s *corev1.Service) {
		s.CreationTimestamp = at(100)
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
	})
	cases := []struct {
		name  string
		newer *corev1.Service
		err   string
	}{
		{"the same ClusterIP and port", makeService("ns2", "newer", func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "other", Port: 81, Protocol: corev1.ProtocolTCP})
		}), "frontend 172.30.1.1:80/TCP (ClusterIP) is already taken by Service ns1/older"},
		{"the same nodePort", makeService("ns2", "newer", func(s *corev1.Service) {
			s.Spec.ClusterIP = "172.30.1.2"
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 30080
		}), "node port TCP/30080 is already taken by Service ns1/older"},
		{"an externalIP on another's ClusterIP", makeService("ns2", "newer", func(s *corev1.Service) {
			s.Spec.ClusterIP = "172.30.1.2"
			s.Spec.ExternalIPs = []string{"172.30.1.1"}
		}), "frontend 172.30.1.1:80/TCP (ExternalIP) is already taken by Service ns1/older"},
		{"an externalIP on the node's NodePort", makeService("ns2", "newer", func(s *corev1.Service) {
			s.Spec.ClusterIP = "172.30.1.2"
			s.Spec.ExternalIPs = []string{testNodeIP}
			s.Spec.Ports[0].Port = 30080
		}), "frontend 192.168.0.2:30080/TCP (ExternalIP) is already taken by Service ns1/older"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.newer.CreationTimestamp = at(200)
			want := []Status{{Object: "Service ns2/newer", Error: c.err}}
			// Input order must not matter: the older service wins either way.
			for _, order := range [][]*corev1.Service{{older, c.newer}, {c.newer, older}} {
				st := build(order, makeSlice("ns2", "newer", port80, readyEP("10.0.9.9", "n1")))
				if !reflect.DeepEqual(st.Status, want) {
					t.Fatalf("status %+v, want %+v", st.Status, want)
				}
				for _, f := range st.Frontends {
					if f.Service.Name != "older" {
						t.Fatalf("the refused service left frontend %s %s in the state", f.Kind, f.Key())
					}
				}
				if st.Backends != 0 {
					t.Fatalf("the refused service left %d backends counted", st.Backends)
				}
			}
		})
	}
}

func TestBadInputNamesTheFieldAndLeavesTheServiceOut(t *testing.T) {
	cases := []struct {
		name string
		opt  svcOpt
		err  string
	}{
		{"an unparseable ClusterIP", func(s *corev1.Service) { s.Spec.ClusterIP = "172.30.1" },
			`spec.clusterIPs[0]: "172.30.1" is not an IP address`},
		{"two ClusterIPs of one family", func(s *corev1.Service) { s.Spec.ClusterIPs = []string{"172.30.1.1", "172.30.1.2"} },
			"spec.clusterIPs[1]: a second IPv4 ClusterIP (172.30.1.2)"},
		{"an unparseable externalIP", func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"1.2.3.4", "nope"} },
			`spec.externalIPs[1]: "nope" is not an IP address`},
		{"a bad source range", func(s *corev1.Service) { s.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/33"} },
			`spec.loadBalancerSourceRanges[0]: "10.0.0.0/33" is not a CIDR`},
		{"an unknown protocol", func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "ICMP" },
			`spec.ports[0].protocol: "ICMP" is not TCP, UDP or SCTP`},
		{"a port out of range", func(s *corev1.Service) { s.Spec.Ports[0].Port = 70000 },
			"spec.ports[0].port: 70000 is not a port"},
		{"the same IP as externalIP and LB ingress", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ExternalIPs = []string{"1.2.3.4"}
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "1.2.3.4"}}
		}, "frontend 1.2.3.4:80/TCP is claimed twice, as ExternalIP and LoadBalancer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			good := makeService("ns1", "good", func(s *corev1.Service) { s.Spec.ClusterIP = "172.30.9.9" })
			st := build([]*corev1.Service{good, makeService("ns1", "bad", c.opt)}, makeSlice("ns1", "bad", port80, readyEP("10.0.1.1", "n1")))
			want := []Status{{Object: "Service ns1/bad", Error: c.err}}
			if !reflect.DeepEqual(st.Status, want) {
				t.Fatalf("status %+v, want %+v", st.Status, want)
			}
			sameLines(t, frontendsOf(st), []string{"ClusterIP 172.30.9.9:80/TCP reject"})
		})
	}
}

func TestFullMapsLeaveWholeServicesOut(t *testing.T) {
	var services []*corev1.Service
	for i := 0; i < 4; i++ {
		services = append(services, makeService("ns1", fmt.Sprintf("svc%d", i), func(s *corev1.Service) {
			s.CreationTimestamp = at(int64(i))
			s.Spec.ClusterIP = fmt.Sprintf("172.30.0.%d", i+1)
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "b", Port: 81, Protocol: corev1.ProtocolTCP})
		}))
	}
	cfg := testConfig()
	cfg.FrontendCapacity = 5
	st := Build(Input{Config: cfg, Services: services})
	if len(st.Frontends) != 4 {
		t.Fatalf("%d frontends with room for 5 and 2 per service, want 4", len(st.Frontends))
	}
	want := []Status{
		{Object: "Service ns1/svc2", Error: "service map full: 6 frontends would exceed the capacity of 5"},
		{Object: "Service ns1/svc3", Error: "service map full: 6 frontends would exceed the capacity of 5"},
	}
	if !reflect.DeepEqual(st.Status, want) {
		t.Fatalf("status %+v, want %+v", st.Status, want)
	}

	cfg = testConfig()
	cfg.BackendCapacity = 1
	st = Build(Input{Config: cfg, Services: services[:2], EndpointSlices: []*discoveryv1.EndpointSlice{
		makeSlice("ns1", "svc0", port80, readyEP("10.0.1.1", "n1")),
		makeSlice("ns1", "svc1", port80, readyEP("10.0.1.2", "n1")),
	}})
	if len(st.Status) != 1 || st.Status[0].Error != "backend map full: 2 backends would exceed the capacity of 1" || st.Backends != 1 {
		t.Fatalf("status %+v with %d backends, want svc1 refused for the backend map", st.Status, st.Backends)
	}
}

// nthAddr is the IPv4 address n after base.
func nthAddr(base string, n int) string {
	b := netip.MustParseAddr(base).As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

// 100k dual-stack services, two endpoints per family, must fit the default
// capacities.
func TestAHundredThousandServicesFitTheDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 100k services")
	}
	var services []*corev1.Service
	var slices []*discoveryv1.EndpointSlice
	for i := 0; i < 100000; i++ {
		name := fmt.Sprintf("svc%d", i)
		v6 := fmt.Sprintf("fd00:10:96::%x:%x", (i+1)>>16, (i+1)&0xffff)
		services = append(services, makeService("ns1", name, func(s *corev1.Service) {
			s.Spec.ClusterIP = nthAddr("172.30.0.0", i+1)
			s.Spec.ClusterIPs = []string{s.Spec.ClusterIP, v6}
		}))
		slices = append(slices,
			makeSlice("ns1", name, port80, readyEP(nthAddr("10.0.0.0", 2*i+1), "n1"), readyEP(nthAddr("10.0.0.0", 2*i+2), "n2")),
			makeSlice("ns1", name, port80, readyEP(fmt.Sprintf("fd00:10::1:%x:%x", i>>16, i&0xffff), "n1"), readyEP(fmt.Sprintf("fd00:10::2:%x:%x", i>>16, i&0xffff), "n2")))
	}
	cfg := testConfig()
	cfg.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("172.30.0.0/15"), netip.MustParsePrefix("fd00:10:96::/108")}
	start := time.Now()
	st := Build(Input{Config: cfg, Services: services, EndpointSlices: slices})
	mustNoStatus(t, st)
	if len(st.Frontends) != 200000 || st.Backends != 400000 {
		t.Fatalf("%d frontends and %d backends, want 200000 and 400000", len(st.Frontends), st.Backends)
	}
	t.Logf("100k dual-stack services, 400k backends built in %v", time.Since(start))
}

func TestTheStateDoesNotDependOnInputOrder(t *testing.T) {
	var services []*corev1.Service
	var slices []*discoveryv1.EndpointSlice
	for i := 0; i < 30; i++ {
		name := fmt.Sprintf("svc%d", i)
		services = append(services, makeService("ns1", name, func(s *corev1.Service) {
			s.Spec.ClusterIP = fmt.Sprintf("172.30.0.%d", i%20+1) // ten collide
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = int32(30000 + i)
		}))
		slices = append(slices, makeSlice("ns1", name, port80, readyEP(fmt.Sprintf("10.0.1.%d", i+1), "n1"), readyEP(fmt.Sprintf("10.0.2.%d", i+1), testNodeName)))
	}
	want := build(services, slices...)
	if len(want.Status) != 10 {
		t.Fatalf("%d refused services, want the 10 later ones that collide", len(want.Status))
	}
	rng := rand.New(rand.NewSource(1))
	for round := 0; round < 5; round++ {
		rng.Shuffle(len(services), func(i, j int) { services[i], services[j] = services[j], services[i] })
		rng.Shuffle(len(slices), func(i, j int) { slices[i], slices[j] = slices[j], slices[i] })
		if got := build(services, slices...); !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: a shuffled input gave another state", round)
		}
	}
}

func TestHostPortsComeFromThisNodesRunningPods(t *testing.T) {
	pod := func(name, node string, phase corev1.PodPhase, ip string, ports ...corev1.ContainerPort) *corev1.Pod {
		p := &corev1.Pod{}
		p.Namespace, p.Name = "ns1", name
		p.Spec.NodeName = node
		p.Spec.Containers = []corev1.Container{{Name: "c", Ports: ports}}
		p.Status.Phase = phase
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
		return p
	}
	web := corev1.ContainerPort{Name: "web", ContainerPort: 8080, HostPort: 80}
	pods := []*corev1.Pod{
		pod("web", testNodeName, corev1.PodRunning, "10.0.0.5", web,
			corev1.ContainerPort{ContainerPort: 53, HostPort: 5353, Protocol: corev1.ProtocolUDP, HostIP: "192.168.0.2"},
			corev1.ContainerPort{ContainerPort: 9090}),
		pod("elsewhere", "node-2", corev1.PodRunning, "10.0.2.5", web),
		pod("done", testNodeName, corev1.PodSucceeded, "10.0.0.6", corev1.ContainerPort{ContainerPort: 8080, HostPort: 81}),
		pod("clash", testNodeName, corev1.PodRunning, "10.0.0.7", web),
	}
	pods[3].CreationTimestamp = at(10)
	st := Build(Input{Config: testConfig(), Pods: pods})
	sameLines(t, frontendsOf(st), []string{
		"HostPort 192.168.0.2:80/TCP forward 10.0.0.5:8080",
		"HostPort 192.168.0.2:5353/UDP forward 10.0.0.5:53",
	})
	want := []Status{{Object: "Pod ns1/clash", Error: "frontend 192.168.0.2:80/TCP (HostPort) is already taken by Pod ns1/web"}}
	if !reflect.DeepEqual(st.Status, want) {
		t.Fatalf("status %+v, want %+v", st.Status, want)
	}
}
