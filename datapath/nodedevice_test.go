package datapath_test

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

// The node device's programs on frames: NodePort to a local backend and to a
// remote one (SNAT and DSR), the backend's node taking a DSR option,
// masquerade of a pod's traffic to the world, externalTrafficPolicy Local,
// and the attempts to get around each.

var (
	nodeIP   = netip.MustParseAddr("172.30.0.11")
	nodeIP2  = netip.MustParseAddr("172.30.0.12")
	nodeIP6  = netip.MustParseAddr("fd00:172:30::11")
	client   = netip.MustParseAddr("203.0.113.2")
	client6  = netip.MustParseAddr("2001:db8:1::2")
	remoteBE = netip.MustParseAddr("10.244.1.7")
	lbIP     = netip.MustParseAddr("198.51.100.10")
)

const remoteNodeID = 6

// nodeSetup loads a datapath for node 1 (172.30.0.11) with pods A, B, C of
// svcSetup, its device configured by nd, and node 2 known as a remote node.
func nodeSetup(t *testing.T, nd datapath.NodeDevice) *datapath.Datapath {
	t.Helper()
	if !nd.IPv4.IsValid() {
		nd.IPv4 = nodeIP
	}
	if !nd.IPv6.IsValid() {
		nd.IPv6 = nodeIP6
	}
	d := datapathtest.LoadConfig(t, datapath.Config{ServiceRanges: []netip.Prefix{svcRange}, NodeDevice: nd})
	installPods(t, d)
	must(t, d.SyncIPCache(append(podIPCache(), datapath.IPCacheEntry{Prefix: netip.PrefixFrom(nodeIP2, 32), Identity: remoteNodeID})))
	return d
}

func tcpSpec(src, dst netip.AddrPort, flags ...string) packet.Spec {
	return packet.Spec{Src: src.Addr(), Dst: dst.Addr(), SrcPort: src.Port(), DstPort: dst.Port(), Protocol: "TCP", Flags: flags, Payload: []byte("hi")}
}

func udpSpec(src, dst netip.AddrPort) packet.Spec {
	return packet.Spec{Src: src.Addr(), Dst: dst.Addr(), SrcPort: src.Port(), DstPort: dst.Port(), Protocol: "UDP", Payload: []byte("hi")}
}

func nodePortSvc(id uint32, front netip.AddrPort, backs ...netip.AddrPort) datapath.Service {
	return datapath.Service{ID: id, Frontend: front, Protocol: datapath.ProtoTCP, Backends: backs, External: true}
}

// runNet runs a frame on a node device hook and returns the result and the
// events it emitted (none for a packet the program only translates).
func runNet(t *testing.T, d *datapath.Datapath, h datapath.Hook, frame []byte) datapath.RunResult {
	t.Helper()
	res, err := d.Run(h, frame)
	must(t, err)
	return res
}

func TestNodePortToALocalBackendKeepsTheClientAddress(t *testing.T) {
	for _, c := range []struct {
		name           string
		front, back    netip.AddrPort
		cl             netip.AddrPort
		family         string
		nodeSideClient bool
	}{
		{"IPv4", ap(nodeIP, 30080), ap(podB, 8080), ap(client, 40000), "IPv4", false},
		{"IPv6", ap(nodeIP6, 30080), ap(podB6, 8080), ap(client6, 40000), "IPv6", false},
		{"a LoadBalancer IP", ap(lbIP, 80), ap(podB, 8080), ap(client, 40001), "IPv4", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := nodeSetup(t, datapath.NodeDevice{})
			must(t, d.UpsertService(nodePortSvc(9, c.front, c.back)))

			res := runNet(t, d, datapath.FromNetdev, build(t, tcpSpec(c.cl, c.front, "SYN")))
			if res.Code != datapath.TCActOK {
				t.Fatalf("a packet to a local backend goes up the node's stack to the pod: code %d", res.Code)
			}
			ev := oneEvent(t, res)
			expectForwarded(t, ev)
			if !ev.NodeDevice || ev.Dst != c.back.Addr() {
				t.Fatalf("the event should come from the node device and name the backend: %s", ev)
			}
			expectSeg(t, "towards the backend", decode(t, res.Out), c.cl, c.back)

			// The pod's ingress sees the client itself (the world).
			_, pev := runSvc(t, d, datapath.ToContainer, res.Out)
			expectForwarded(t, pev)
			if pev.SrcIdentity != 2 && pev.SrcIdentity != 9 && pev.SrcIdentity != 10 {
				t.Fatalf("the backend should see the world as the source: %s", pev)
			}

			// The reply leaves by the node device from the frontend.
			reply := build(t, tcpSpec(c.back, c.cl, "SYN", "ACK"))
			res = runNet(t, d, datapath.ToNetdev, reply)
			if res.Code != datapath.TCActOK {
				t.Fatalf("reply: code %d", res.Code)
			}
			expectSeg(t, "the reply leaving", decode(t, res.Out), c.front, c.cl)

			// The next packet of the flow takes the same way.
			res = runNet(t, d, datapath.FromNetdev, build(t, tcpSpec(c.cl, c.front, "ACK")))
			expectSeg(t, "the flow's next packet", decode(t, res.Out), c.cl, c.back)
		})
	}
}

func TestNodePortToARemoteBackendIsSNATedAndTheReplyReturns(t *testing.T) {
	d := nodeSetup(t, datapath.NodeDevice{})
	front, back, cl := ap(nodeIP, 30080), ap(remoteBE, 8080), ap(client, 40000)
	must(t, d.UpsertService(nodePortSvc(9, front, back)))

	res := runNet(t, d, datapath.FromNetdev, build(t, tcpSpec(cl, front, "SYN")))
	if res.Code != datapath.TCActRedirect {
		t.Fatalf("a packet to a remote backend leaves again by the device: code %d", res.Code)
	}
	out := decode(t, res.Out)
	if out.src.Addr() != nodeIP || out.src.Port() < 61000 || out.dst != back {
		t.Fatalf("want %s:61000+ -> %s, got %s -> %s", nodeIP, back, out.src, out.dst)
	}
	snat := out.src

	// Node 2's backend answers node 1, which answers the client from the frontend.
	res = runNet(t, d, datapath.FromNetdev, build(t, tcpSpec(back, snat, "SYN", "ACK")))
	if res.Code != datapath.TCActRedirect {
		t.Fatalf("the reply leaves again by the device: code %d", res.Code)
	}
	expectSeg(t, "reply to the client", decode(t, res.Out), front, cl)

	// A second client gets its own port.
	res = runNet(t, d, datapath.FromNetdev, build(t, tcpSpec(ap(client, 40001), front, "SYN")))
	if o := decode(t, res.Out); o.src == snat {
		t.Fatalf("two flows share the node port %s", snat)
	}

	// Someone other than the backend cannot use the flow's port: a packet
	// from another source to it is not translated.
	res = runNet(t, d, datapath.FromNetdev, build(t, tcpSpec(ap(netip.MustParseAddr("203.0.113.66"), 8080), snat, "ACK")))
	if res.Code != datapath.TCActOK {
		t.Fatalf("a stranger's packet to the node port should go to the node untouched: code %d", res.Code)
	}
	expectSeg(t, "a stranger's packet", decode(t, res.Out), ap(netip.MustParseAddr("203.0.113.66"), 8080), snat)
	flows, err := d.NATFlows()
	must(t, err)
	if len(flows) != 4 { // two flows, an OUT and an IN entry each
		t.Fatalf("want 4 translation entries, got %v", flows)
	}
}

func TestDSRCarriesTheFrontendToTheBackendsNode(t *testing.T) {
	front, back, cl := ap(nodeIP, 30080), ap(podB, 8080), ap(client, 40000)
	// Node 1 sends to node 2's pod B (not local on node 1).
	n1 := datapathtest.LoadConfig(t, datapath.Config{NodeDevice: datapath.NodeDevice{IPv4: nodeIP, DSR: true}})
	must(t, n1.UpsertService(nodePortSvc(9, front, back)))
	res := runNet(t, n1, datapath.FromNetdev, build(t, tcpSpec(cl, front, "SYN")))
	if res.Code != datapath.TCActRedirect {
		t.Fatalf("DSR: code %d", res.Code)
	}
	// IHL 7, then the option: type 0x9c, length 8, the frontend's port and address.
	opt := append([]byte{0x9c, 8, byte(front.Port() >> 8), byte(front.Port())}, nodeIP.AsSlice()...)
	if res.Out[14]&0x0f != 7 || !bytes.Equal(res.Out[34:42], opt) {
		t.Fatalf("the packet should carry the DSR option %x: %x", opt, res.Out[14:42])
	}
	seg := decode(t, res.Out)
	expectSeg(t, "DSR packet", seg, cl, back)

	// Node 2 holds pod B: it takes the option off and remembers the frontend.
	n2 := nodeSetup(t, datapath.NodeDevice{IPv4: nodeIP2, DSR: true})
	must(t, n2.SyncIPCache(append(podIPCache(), datapath.IPCacheEntry{Prefix: netip.PrefixFrom(nodeIP, 32), Identity: remoteNodeID})))
	must(t, n2.UpsertService(nodePortSvc(9, ap(nodeIP2, 30080), back)))
	res2 := runNet(t, n2, datapath.FromNetdev, res.Out)
	if res2.Code != datapath.TCActOK {
		t.Fatalf("node 2: code %d", res2.Code)
	}
	if res2.Out[14]&0x0f != 5 {
		t.Fatalf("node 2 should strip the option: %x", res2.Out[14:34])
	}
	expectSeg(t, "at node 2", decode(t, res2.Out), cl, back)

	res2 = runNet(t, n2, datapath.ToNetdev, build(t, tcpSpec(back, cl, "SYN", "ACK")))
	expectSeg(t, "the direct reply", decode(t, res2.Out), front, cl)

	// A forged option naming an address that is no frontend (a reflection
	// attack: the pod's replies would come from 8.8.8.8) is dropped.
	forged := withDSROption(t, build(t, tcpSpec(ap(client, 40002), back, "SYN")), netip.MustParseAddr("8.8.8.8"), 53)
	res2 = runNet(t, n2, datapath.FromNetdev, forged)
	expectDropped(t, oneEvent(t, res2), "DSR_INVALID")
	// So is one naming a real NodePort on an address that is no node's.
	forged = withDSROption(t, build(t, tcpSpec(ap(client, 40003), back, "SYN")), netip.MustParseAddr("203.0.113.9"), 30080)
	expectDropped(t, oneEvent(t, runNet(t, n2, datapath.FromNetdev, forged)), "DSR_INVALID")
	// And one for a backend that is not on this node.
	forged = withDSROption(t, build(t, tcpSpec(ap(client, 40004), ap(remoteBE, 8080), "SYN")), nodeIP, 30080)
	expectDropped(t, oneEvent(t, runNet(t, n2, datapath.FromNetdev, forged)), "DSR_INVALID")
	// Other IP options are not the device's business: they pass untouched.
	other := withOption(t, build(t, tcpSpec(ap(client, 40005), back, "SYN")), layers.IPv4Option{OptionType: 0x94, OptionLength: 4, OptionData: []byte{0, 0}})
	res2 = runNet(t, n2, datapath.FromNetdev, other)
	if res2.Code != datapath.TCActOK || len(res2.Events) != 0 || !bytes.Equal(res2.Out[:len(other)], other) {
		t.Fatalf("a router alert option should pass untouched: code %d events %v", res2.Code, res2.Events)
	}
}

// withDSROption rebuilds an IPv4 frame with the DSR option naming addr:port.
func withDSROption(t testing.TB, frame []byte, addr netip.Addr, port uint16) []byte {
	t.Helper()
	a := addr.As4()
	return withOption(t, frame, layers.IPv4Option{OptionType: 0x9c, OptionLength: 8, OptionData: []byte{byte(port >> 8), byte(port), a[0], a[1], a[2], a[3]}})
}

// withOption rebuilds an IPv4 TCP frame with one IP option.
func withOption(t testing.TB, frame []byte, o layers.IPv4Option) []byte {
	t.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	ip.Options = []layers.IPv4Option{o}
	tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	must(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, eth, ip, tcp, gopacket.Payload(tcp.Payload)))
	return buf.Bytes()
}

func TestMasqueradeGivesPodsTheNodeAddressTowardsTheWorld(t *testing.T) {
	web := ap(netip.MustParseAddr("203.0.113.11"), 80)
	d := nodeSetup(t, datapath.NodeDevice{Masquerade: true, NonMasqueradeCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("172.30.0.0/24")}})
	for _, proto := range []string{"TCP", "UDP"} {
		t.Run(proto, func(t *testing.T) {
			pod := ap(podA, 41000)
			spec, back := tcpSpec(pod, web, "SYN"), func(src, dst netip.AddrPort) packet.Spec { return tcpSpec(src, dst, "SYN", "ACK") }
			if proto == "UDP" {
				spec, back = udpSpec(pod, web), udpSpec
			}
			res := runNet(t, d, datapath.ToNetdev, build(t, spec))
			ev := oneEvent(t, res)
			expectForwarded(t, ev)
			out := decode(t, res.Out)
			if out.src.Addr() != nodeIP || out.src.Port() < 61000 || out.dst != web {
				t.Fatalf("want %s:61000+ -> %s, got %s -> %s", nodeIP, web, out.src, out.dst)
			}
			res = runNet(t, d, datapath.FromNetdev, build(t, back(web, out.src)))
			if res.Code != datapath.TCActOK {
				t.Fatalf("the world's reply goes up the node's stack to the pod: code %d", res.Code)
			}
			expectSeg(t, "the world's reply", decode(t, res.Out), web, pod)
			// The flow keeps its port.
			res = runNet(t, d, datapath.ToNetdev, build(t, spec))
			if again := decode(t, res.Out); again.src != out.src {
				t.Fatalf("the flow moved from %s to %s", out.src, again.src)
			}
		})
	}
	// ICMP cannot be masqueraded here: a pod's ping to the world is dropped
	// by name rather than sent with the pod's address.
	ping := build(t, packet.Spec{Src: podA, Dst: web.Addr(), Protocol: "ICMP", ICMPType: 8, ICMPID: 7})
	expectDropped(t, oneEvent(t, runNet(t, d, datapath.ToNetdev, ping)), "NAT_UNSUPPORTED_PROTO")
	// Pods, nodes and the node's own traffic keep their addresses.
	for _, s := range []packet.Spec{tcpSpec(ap(podA, 41001), ap(remoteBE, 80), "SYN"), tcpSpec(ap(podA, 41002), ap(nodeIP2, 80), "SYN"), tcpSpec(ap(nodeIP, 41003), web, "SYN")} {
		res := runNet(t, d, datapath.ToNetdev, build(t, s))
		expectSeg(t, "not masqueraded", decode(t, res.Out), ap(s.Src, s.SrcPort), ap(s.Dst, s.DstPort))
	}
}

func TestExternalTrafficPolicyLocalSplitsOutsideFromInside(t *testing.T) {
	d := nodeSetup(t, datapath.NodeDevice{})
	front := ap(nodeIP, 30090)
	// Internal: every backend (here a remote one); external: none local.
	internal := nodePortSvc(11, front, ap(remoteBE, 8080))
	external := nodePortSvc(12, front)
	external.Scope = datapath.ScopeExternal
	must(t, d.SyncServices([]datapath.Service{internal, external}))

	res := runNet(t, d, datapath.FromNetdev, build(t, tcpSpec(ap(client, 40000), front, "SYN")))
	expectDropped(t, oneEvent(t, res), "SERVICE_NO_BACKEND")

	res, ev := runSvc(t, d, datapath.FromContainer, build(t, tcpSpec(ap(podA, 40000), front, "SYN")))
	expectForwarded(t, ev)
	expectSeg(t, "a pod reaching the NodePort", decode(t, res.Out), ap(podA, 40000), ap(remoteBE, 8080))

	// With the external entry gone, outside traffic gets every backend.
	must(t, d.SyncServices([]datapath.Service{internal}))
	res = runNet(t, d, datapath.FromNetdev, build(t, tcpSpec(ap(client, 40001), front, "SYN")))
	if res.Code != datapath.TCActRedirect {
		t.Fatalf("without the external entry: code %d", res.Code)
	}
}

func TestNodeAddressesKeepTheirOtherPorts(t *testing.T) {
	d := nodeSetup(t, datapath.NodeDevice{})
	must(t, d.UpsertService(nodePortSvc(9, ap(nodeIP, 30080), ap(podB, 8080))))
	// From outside: the node's own sshd is not a service's.
	res := runNet(t, d, datapath.FromNetdev, build(t, tcpSpec(ap(client, 40000), ap(nodeIP, 22), "SYN")))
	if res.Code != datapath.TCActOK || len(res.Events) != 0 {
		t.Fatalf("the node's own port should pass untouched: code %d events %v", res.Code, res.Events)
	}
	expectSeg(t, "to the node", decode(t, res.Out), ap(client, 40000), ap(nodeIP, 22))
	// From a pod: no WRONG_PORT on a node address (that is a ClusterIP rule).
	res, ev := runSvc(t, d, datapath.FromContainer, build(t, tcpSpec(ap(podA, 40000), ap(nodeIP, 10250), "SYN")))
	expectForwarded(t, ev)
	expectSeg(t, "a pod to the kubelet", decode(t, res.Out), ap(podA, 40000), ap(nodeIP, 10250))
	// ClusterIPs are still no service's from outside: a ClusterIP frontend is
	// not served on the device.
	must(t, d.UpsertService(datapath.Service{ID: 10, Frontend: ap(vip, 80), Protocol: datapath.ProtoTCP, Backends: []netip.AddrPort{ap(podB, 8080)}}))
	res = runNet(t, d, datapath.FromNetdev, build(t, tcpSpec(ap(client, 40000), ap(vip, 80), "SYN")))
	expectSeg(t, "a ClusterIP from outside", decode(t, res.Out), ap(client, 40000), ap(vip, 80))
}

func TestLoadBalancerSourceRangesAdmitOnlyTheirClients(t *testing.T) {
	d := nodeSetup(t, datapath.NodeDevice{})
	s := nodePortSvc(9, ap(lbIP, 80), ap(podB, 8080))
	s.SourceRanges = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/28"), netip.MustParsePrefix("2001:db8::/32")}
	must(t, d.UpsertService(s))
	res := runNet(t, d, datapath.FromNetdev, build(t, tcpSpec(ap(client, 40000), ap(lbIP, 80), "SYN")))
	expectForwarded(t, oneEvent(t, res))
	expectSeg(t, "a client in range", decode(t, res.Out), ap(client, 40000), ap(podB, 8080))

	outsider := ap(netip.MustParseAddr("203.0.113.77"), 40000)
	res = runNet(t, d, datapath.FromNetdev, build(t, tcpSpec(outsider, ap(lbIP, 80), "SYN")))
	if res.Code != datapath.TCActShot {
		t.Fatalf("a client out of range is dropped, never answered: code %d", res.Code)
	}
	expectDropped(t, oneEvent(t, res), "SERVICE_SOURCE_RANGE")
	// A pod is a client like any other.
	_, ev := runSvc(t, d, datapath.FromContainer, build(t, tcpSpec(ap(podA, 40000), ap(lbIP, 80), "SYN")))
	expectDropped(t, ev, "SERVICE_SOURCE_RANGE")

	// Ranges that change take effect for new flows; removed ones are gone.
	s.SourceRanges = []netip.Prefix{netip.MustParsePrefix("203.0.113.64/26")}
	must(t, d.UpsertService(s))
	res = runNet(t, d, datapath.FromNetdev, build(t, tcpSpec(outsider, ap(lbIP, 80), "SYN")))
	expectForwarded(t, oneEvent(t, res))
	res = runNet(t, d, datapath.FromNetdev, build(t, tcpSpec(ap(client, 40009), ap(lbIP, 80), "SYN")))
	expectDropped(t, oneEvent(t, res), "SERVICE_SOURCE_RANGE")
	// Without ranges, everyone.
	s.SourceRanges = nil
	must(t, d.UpsertService(s))
	res = runNet(t, d, datapath.FromNetdev, build(t, tcpSpec(ap(client, 40010), ap(lbIP, 80), "SYN")))
	expectForwarded(t, oneEvent(t, res))
}

func TestNodePortWithoutBackendsRejectsBackOutTheDevice(t *testing.T) {
	d := nodeSetup(t, datapath.NodeDevice{})
	s := nodePortSvc(9, ap(nodeIP, 30080))
	s.Reject = true
	must(t, d.UpsertService(s))
	res := runNet(t, d, datapath.FromNetdev, build(t, tcpSpec(ap(client, 40000), ap(nodeIP, 30080), "SYN")))
	if res.Code != datapath.TCActRedirect {
		t.Fatalf("the ICMP answer goes back out: code %d", res.Code)
	}
	expectDropped(t, oneEvent(t, res), "SERVICE_NO_BACKEND")
	if got := decode(t, res.Out); got.proto != "ICMP 3/3" || got.src.Addr() != nodeIP || got.dst.Addr() != client {
		t.Fatalf("want ICMP port unreachable from %s to %s, got %+v", nodeIP, client, got)
	}
}

// A reset datapath forgets the node device's translations, so a reused one
// (the unit runner pools them) maps no new flow by an old flow's tuple.
func TestResetForgetsNodeDeviceTranslations(t *testing.T) {
	d := nodeSetup(t, datapath.NodeDevice{})
	must(t, d.UpsertService(nodePortSvc(9, ap(nodeIP, 30080), ap(remoteBE, 8080))))
	runNet(t, d, datapath.FromNetdev, build(t, tcpSpec(ap(client, 40000), ap(nodeIP, 30080), "SYN")))
	if flows, err := d.NATFlows(); err != nil || len(flows) != 2 {
		t.Fatalf("before the reset: %v, %v; want an OUT and an IN entry", flows, err)
	}
	must(t, d.Reset())
	if flows, err := d.NATFlows(); err != nil || len(flows) != 0 {
		t.Fatalf("after the reset: %v, %v", flows, err)
	}
}

// The node device routes SNATed NodePort traffic itself, past the node's
// stack: it takes a hop off as a router would, so a routing loop between
// nodes ends, and drops a packet with none left by name.
func TestTheNodeDeviceTakesAHopOffWhatItRoutes(t *testing.T) {
	for _, c := range []struct {
		name            string
		front, back, cl netip.AddrPort
		ttlOffset       int
	}{
		{"IPv4", ap(nodeIP, 30080), ap(remoteBE, 8080), ap(client, 40000), 14 + 8},
		{"IPv6", ap(nodeIP6, 30080), ap(netip.MustParseAddr("fd10:244:1::7"), 8080), ap(client6, 40000), 14 + 7},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := nodeSetup(t, datapath.NodeDevice{})
			must(t, d.UpsertService(nodePortSvc(9, c.front, c.back)))
			spec := tcpSpec(c.cl, c.front, "SYN")
			spec.HopLimit = 9
			res := runNet(t, d, datapath.FromNetdev, build(t, spec))
			if res.Code != datapath.TCActRedirect {
				t.Fatalf("code %d, want a redirect", res.Code)
			}
			decode(t, res.Out) // the IPv4 header checksum still holds
			if got := res.Out[c.ttlOffset]; got != 8 {
				t.Fatalf("TTL %d after the node routed it, want 8", got)
			}
			for _, hops := range []uint8{1, 0} {
				spec := tcpSpec(ap(c.cl.Addr(), 40100+uint16(hops)), c.front, "SYN")
				spec.HopLimit = hops
				frame := build(t, spec)
				if hops == 0 { // the builder reads 0 as its default
					frame[c.ttlOffset] = 0
					if c.cl.Addr().Is4() {
						fixIPv4Checksum(frame)
					}
				}
				expectDropped(t, oneEvent(t, runNet(t, d, datapath.FromNetdev, frame)), "TTL_EXCEEDED")
			}
		})
	}
}

// DSR over IPv6: the frontend travels in a Destination Options header of
// its own (IPv6 has no header options), and the backend's node takes it off.
func TestDSRCarriesTheFrontendOverIPv6(t *testing.T) {
	nodeIP2v6 := netip.MustParseAddr("fd00:172:30::12")
	front, back, cl := ap(nodeIP6, 30080), ap(podB6, 8080), ap(client6, 40000)
	n1 := datapathtest.LoadConfig(t, datapath.Config{NodeDevice: datapath.NodeDevice{IPv4: nodeIP, IPv6: nodeIP6, DSR: true}})
	must(t, n1.UpsertService(nodePortSvc(9, front, back)))
	res := runNet(t, n1, datapath.FromNetdev, build(t, tcpSpec(cl, front, "SYN")))
	if res.Code != datapath.TCActRedirect {
		t.Fatalf("DSR: code %d", res.Code)
	}
	// Next header 60 (Destination Options), then 24 bytes: TCP next, length
	// 2 (8-byte units past the first 8), option 0x1e of 20 bytes: the
	// frontend's port, two zero bytes, its address.
	opt := append([]byte{6, 2, 0x1e, 20, byte(front.Port() >> 8), byte(front.Port()), 0, 0}, nodeIP6.AsSlice()...)
	if res.Out[14+6] != 60 || !bytes.Equal(res.Out[54:78], opt) {
		t.Fatalf("the packet should carry the DSR header %x: %x", opt, res.Out[14:78])
	}
	if plen := int(res.Out[18])<<8 | int(res.Out[19]); plen != len(res.Out)-54 {
		t.Fatalf("payload length %d, want %d", plen, len(res.Out)-54)
	}
	// Without the header the packet is the translated one, TCP checksum
	// intact (its pseudo-header does not cover extension headers).
	plain := append(append([]byte(nil), res.Out[:54]...), res.Out[78:]...)
	plain[14+6] = 6
	plain[18], plain[19] = byte((len(plain)-54)>>8), byte(len(plain)-54)
	expectSeg(t, "DSR packet", decode(t, plain), cl, back)

	// Node 2 holds pod B: it takes the header off and remembers the frontend.
	n2 := nodeSetup(t, datapath.NodeDevice{IPv4: nodeIP2, IPv6: nodeIP2v6, DSR: true})
	must(t, n2.SyncIPCache(append(podIPCache(), datapath.IPCacheEntry{Prefix: netip.PrefixFrom(nodeIP6, 128), Identity: remoteNodeID})))
	must(t, n2.UpsertService(nodePortSvc(9, ap(nodeIP2v6, 30080), back)))
	res2 := runNet(t, n2, datapath.FromNetdev, res.Out)
	if res2.Code != datapath.TCActOK {
		t.Fatalf("node 2: code %d", res2.Code)
	}
	if !bytes.Equal(res2.Out[:len(plain)], plain) {
		t.Fatalf("node 2 should strip the header whole:\n got  %x\n want %x", res2.Out, plain)
	}
	res2 = runNet(t, n2, datapath.ToNetdev, build(t, tcpSpec(back, cl, "SYN", "ACK")))
	expectSeg(t, "the direct reply", decode(t, res2.Out), front, cl)

	// A forged header naming an address that is no frontend is dropped.
	forged := append([]byte(nil), res.Out...)
	copy(forged[62:78], netip.MustParseAddr("2001:4860:4860::8888").AsSlice())
	expectDropped(t, oneEvent(t, runNet(t, n2, datapath.FromNetdev, forged)), "DSR_INVALID")
	// So is one with a wrong length.
	forged = append([]byte(nil), res.Out...)
	forged[54+3] = 16
	expectDropped(t, oneEvent(t, runNet(t, n2, datapath.FromNetdev, forged)), "DSR_INVALID")
}
