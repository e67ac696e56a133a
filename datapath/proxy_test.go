package datapath_test

import (
	"context"
	"net"
	"testing"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

// listenInTestNamespace opens a proxy listener where the test frames run.
func listenInTestNamespace(t *testing.T, d *datapath.Datapath, port uint16) net.Listener {
	t.Helper()
	var ln net.Listener
	var err error
	must(t, d.InTestNamespace(func() { ln, err = datapath.ListenProxy(context.Background(), port) }))
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln
}

// The redirect verdict with BPF_PROG_TEST_RUN: a redirected flow with no
// proxy socket is dropped by name; with the proxy listening it is redirected
// (egress: assigned at from_container; ingress: turned back into the
// device's ingress with the proxy port in the mark, MACs swapped), and flows
// without an L7 rule never touch the proxy.
func TestProxyRedirectVerdicts(t *testing.T) {
	d := datapathtest.Load(t)
	setup(t, d, true, true)
	must(t, d.SetPolicy(1, []datapath.PolicyEntry{
		{Identity: 0, Direction: datapath.Egress, Protocol: 6, PortLo: 80, Action: datapath.PolicyRedirect, ProxyPort: testProxyPort},
		{Identity: 0, Direction: datapath.Egress, Protocol: 6, PortLo: 443},
	}))
	must(t, d.SetPolicy(2, []datapath.PolicyEntry{
		{Identity: idA, Direction: datapath.Ingress, Protocol: 6, PortLo: 8080, Action: datapath.PolicyRedirect, ProxyPort: testProxyPort},
	}))

	ev := run(t, d, datapath.FromContainer, tcp(podA, world, 40000, 80, "SYN"))
	if ev.Verdict != datapath.VerdictDropped || ev.Reason.String() != "PROXY_UNAVAILABLE" || ev.ProxyPort != testProxyPort {
		t.Fatalf("no proxy listening: got %v, want a PROXY_UNAVAILABLE drop naming port %d", ev, testProxyPort)
	}

	listenInTestNamespace(t, d, testProxyPort)
	must(t, d.FlushConntrack())
	ev = run(t, d, datapath.FromContainer, tcp(podA, world, 40001, 80, "SYN"))
	if ev.Verdict != datapath.VerdictRedirected || ev.ProxyPort != testProxyPort {
		t.Fatalf("egress with the proxy listening: got %v, want redirected to %d", ev, testProxyPort)
	}
	// The flow's next packet finds its entry and goes to the proxy too.
	ev = run(t, d, datapath.FromContainer, tcp(podA, world, 40001, 80, "ACK"))
	if ev.Verdict != datapath.VerdictRedirected || ev.CT.String() != "established" {
		t.Fatalf("established packet of a redirected flow: got %v, want redirected", ev)
	}
	// No L7 rule on 443: forwarded, no proxy port.
	ev = run(t, d, datapath.FromContainer, tcp(podA, world, 40002, 443, "SYN"))
	if ev.Verdict != datapath.VerdictForwarded || ev.ProxyPort != 0 {
		t.Fatalf("port without an L7 rule: got %v, want forwarded without the proxy", ev)
	}

	// Towards B: turned back into B's device with the mark.
	frame, err := packet.Build(tcp(podA, podB, 40003, 8080, "SYN"))
	must(t, err)
	res, err := d.Run(datapath.ToContainer, frame)
	must(t, err)
	if len(res.Events) != 1 || res.Events[0].Verdict != datapath.VerdictRedirected || res.Code != datapath.TCActRedirect {
		t.Fatalf("ingress redirect: code %d events %v, want one redirected event and TC_ACT_REDIRECT", res.Code, res.Events)
	}
	out := res.Out[:len(frame)]
	if string(out[0:6]) != string(frame[6:12]) || string(out[6:12]) != string(frame[0:6]) {
		t.Fatalf("the turned-back frame's MACs are not swapped: %x", out[:12])
	}
	// B's from_container takes the marked frame and assigns the proxy's
	// socket: no event (reported at to_container), TC_ACT_OK.
	devB, ok := d.DeviceOf(2)
	if !ok {
		t.Fatal("endpoint 2 has no test device")
	}
	mark := datapath.ProxyMarkToProxy(testProxyPort)
	res, err = d.RunMarked(datapath.FromContainer, devB, mark, out)
	must(t, err)
	if res.Code != datapath.TCActOK || len(res.Events) != 0 {
		t.Fatalf("the marked frame at B's from_container: code %d events %v, want TC_ACT_OK and no event", res.Code, res.Events)
	}
	// The same mark naming a port nobody listens on: dropped by name, not
	// passed with its foreign source address.
	res, err = d.RunMarked(datapath.FromContainer, devB, datapath.ProxyMarkToProxy(testProxyPort+1), out)
	must(t, err)
	if res.Code != datapath.TCActShot || len(res.Events) != 1 || res.Events[0].Reason.String() != "PROXY_UNAVAILABLE" {
		t.Fatalf("marked frame for a port without a proxy: code %d events %v, want a PROXY_UNAVAILABLE drop", res.Code, res.Events)
	}
}

// An ingress proxy's upstream connection (its mark) reaches the pod without
// being judged again, so it does not loop back to the proxy; an egress
// proxy's carries the client's identity, which the destination's ingress
// policy judges instead of the node's.
func TestProxyUpstreamMarks(t *testing.T) {
	d := datapathtest.Load(t)
	setup(t, d, false, true)
	must(t, d.SetPolicy(2, []datapath.PolicyEntry{
		{Identity: idA, Direction: datapath.Ingress, Protocol: 6, PortLo: 8080, Action: datapath.PolicyRedirect, ProxyPort: testProxyPort},
		{Identity: idC, Direction: datapath.Ingress, Protocol: 6, PortLo: 9090},
	}))
	devB, _ := d.DeviceOf(2)
	node := podC // any source: the mark, not the address, decides
	frame, err := packet.Build(tcp(node, podB, 41000, 8080, "SYN"))
	must(t, err)
	res, err := d.RunMarked(datapath.ToContainer, devB, uint32(datapath.ProxyMarkIngress()), frame)
	must(t, err)
	if res.Code != datapath.TCActOK || len(res.Events) != 1 || res.Events[0].Verdict != datapath.VerdictForwarded {
		t.Fatalf("ingress proxy's upstream: code %d events %v, want forwarded to the pod", res.Code, res.Events)
	}

	markA, err := datapath.ProxyMarkEgress(idA)
	must(t, err)
	markC, err := datapath.ProxyMarkEgress(idC)
	must(t, err)
	frame, err = packet.Build(tcp(podA, podB, 41001, 9090, "SYN"))
	must(t, err)
	res, err = d.RunMarked(datapath.ToContainer, devB, uint32(markA), frame)
	must(t, err)
	if len(res.Events) != 1 || res.Events[0].Reason.String() != "POLICY_DENIED" || res.Events[0].SrcIdentity != idA {
		t.Fatalf("egress proxy's upstream for A to 9090: events %v, want POLICY_DENIED judging identity %d", res.Events, idA)
	}
	frame, err = packet.Build(tcp(podA, podB, 41002, 9090, "SYN"))
	must(t, err)
	res, err = d.RunMarked(datapath.ToContainer, devB, uint32(markC), frame)
	must(t, err)
	if len(res.Events) != 1 || res.Events[0].Verdict != datapath.VerdictForwarded || res.Events[0].SrcIdentity != idC {
		t.Fatalf("egress proxy's upstream for C to 9090: events %v, want forwarded as identity %d", res.Events, idC)
	}
	if _, err := datapath.ProxyMarkEgress(1 << 24); err == nil {
		t.Fatal("an identity wider than the mark was accepted")
	}
}
