package datapath_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
)

// Socket-level load balancing on real sockets: the socket programs attached
// to a real cgroup v2 directory, a client process placed in it (the test
// binary run again, in a pod's namespace), and the per-packet programs on
// the pods' veths reporting what crossed the wire.

// sockChildEnv carries a sockRequest to the test binary run as a client.
const sockChildEnv = "KESTREL_SOCKLB_CHILD"

// sockRequest is what the client process does: connect (TCP or UDP) or
// send an unconnected UDP datagram to Target from inside Netns, send Msg and
// read the answer.
type sockRequest struct {
	Netns  string // a path under /var/run/netns
	Op     string // "tcp", "udp-connect", "udp-sendto", "tcp6-mapped"
	Target string
	Msg    string
}

// sockResult is what the client saw: the socket's peer (getpeername), the
// answer and the address it came from (recvmsg), or the error.
type sockResult struct {
	Peer, From, Answer, Err string
	Refused                 bool
}

func TestMain(m *testing.M) {
	if req := os.Getenv(sockChildEnv); req != "" {
		os.Exit(sockChild(req))
	}
	os.Exit(m.Run())
}

// sockChild runs one sockRequest and prints its sockResult.
func sockChild(raw string) int {
	var req sockRequest
	if err := json.Unmarshal([]byte(raw), &req); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	runtime.LockOSThread()
	res := sockResult{}
	if err := enterNetns(req.Netns); err != nil {
		res.Err = err.Error()
	} else {
		res = sockDo(req)
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

func enterNetns(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Setns(fd, unix.CLONE_NEWNET)
}

func sockDo(req sockRequest) sockResult {
	fail := func(err error) sockResult {
		return sockResult{Err: err.Error(), Refused: errors.Is(err, syscall.ECONNREFUSED)}
	}
	buf := make([]byte, 256)
	switch req.Op {
	case "tcp", "udp-connect":
		network := map[string]string{"tcp": "tcp", "udp-connect": "udp"}[req.Op]
		c, err := net.DialTimeout(network, req.Target, 2*time.Second)
		if err != nil {
			return fail(err)
		}
		defer c.Close()
		peer, err := getpeername(c.(syscall.Conn))
		if err != nil {
			return fail(err)
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte(req.Msg)); err != nil {
			return fail(err)
		}
		n, err := c.Read(buf)
		if err != nil {
			return fail(err)
		}
		return sockResult{Peer: peer, Answer: string(buf[:n])}
	case "udp-sendto":
		to, err := net.ResolveUDPAddr("udp", req.Target)
		if err != nil {
			return fail(err)
		}
		c, err := net.ListenUDP("udp", nil)
		if err != nil {
			return fail(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.WriteToUDP([]byte(req.Msg), to); err != nil {
			return fail(err)
		}
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			return fail(err)
		}
		return sockResult{From: from.String(), Answer: string(buf[:n])}
	case "tcp6-mapped":
		// An IPv6 socket connecting to an IPv4 frontend as ::ffff:a.b.c.d.
		ap := netip.MustParseAddrPort(req.Target)
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
		if err != nil {
			return fail(err)
		}
		defer unix.Close(fd)
		sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: netip.AddrFrom16(ap.Addr().As16()).As16()}
		if err := unix.Connect(fd, sa); err != nil {
			return fail(err)
		}
		p, err := unix.Getpeername(fd)
		if err != nil {
			return fail(err)
		}
		p6 := p.(*unix.SockaddrInet6)
		peer := netip.AddrPortFrom(netip.AddrFrom16(p6.Addr), uint16(p6.Port))
		unix.Write(fd, []byte(req.Msg))
		tv := unix.Timeval{Sec: 2}
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		n, err := unix.Read(fd, buf)
		if err != nil {
			return fail(err)
		}
		return sockResult{Peer: peer.String(), Answer: string(buf[:n])}
	}
	return sockResult{Err: "unknown op " + req.Op}
}

// getpeername asks the kernel for the connected socket's peer, as the
// application would.
func getpeername(c syscall.Conn) (string, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return "", err
	}
	var sa unix.Sockaddr
	var serr error
	rc.Control(func(fd uintptr) { sa, serr = unix.Getpeername(int(fd)) })
	if serr != nil {
		return "", serr
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String(), nil
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String(), nil
	}
	return "", fmt.Errorf("peer of unknown family %T", sa)
}

// runSockChild runs req in a new process placed in cgroup (none: the
// test's own cgroup) and returns what it saw.
func runSockChild(t *testing.T, cgroup string, req sockRequest) sockResult {
	t.Helper()
	raw, _ := json.Marshal(req)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), sockChildEnv+"="+string(raw))
	if cgroup != "" {
		dir, err := os.Open(cgroup)
		must(t, err)
		defer dir.Close()
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	}
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("client process: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("client process: %v", err)
	}
	var res sockResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("client process said %q: %v", out, err)
	}
	return res
}

// testCgroup makes a cgroup v2 directory for the test and removes it at the
// end (its processes have exited by then).
func testCgroup(t *testing.T) string {
	t.Helper()
	mount, err := datapath.Cgroup2Mount()
	if err != nil {
		datapathtest.SkipOrFail(t, &datapath.MissingFeatureError{Feature: "a cgroup v2 mount", Err: err})
	}
	dir := filepath.Join(mount, fmt.Sprintf("kestrel-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-")))
	must(t, os.Mkdir(dir, 0o755))
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove cgroup %s: %v", dir, err)
		}
	})
	return dir
}

func TestSocketLB(t *testing.T) {
	d := datapathtest.LoadConfig(t, datapath.Config{SocketLB: true})
	n := datapathtest.NewNode(t, "kst-sock")
	a := n.AddPod("10.211.0.2", "fd11::2")
	b := n.AddPod("10.211.0.3", "fd11::3")
	var ipc []datapath.IPCacheEntry
	for i, p := range []*datapathtest.Pod{a, b} {
		for _, ip := range p.IPs {
			ipc = append(ipc, datapath.IPCacheEntry{Prefix: netip.PrefixFrom(ip, ip.BitLen()), Identity: uint32(idA + i)})
		}
		must(t, d.UpsertEndpoint(p.Endpoint(uint32(i+1), uint32(idA+i), false, false)))
		var links *datapath.PodDeviceLinks
		var err error
		n.In(n.NS, func() { links, err = d.AttachPodDevice(p.HostIfindex, "") })
		if err != nil {
			datapathtest.SkipOrFail(t, err)
		}
		t.Cleanup(func() { links.Close() })
	}
	must(t, d.SyncIPCache(ipc))
	log := collectEvents(d)

	cg := testCgroup(t)
	links, err := d.AttachCgroup(cg, "")
	if err != nil {
		datapathtest.SkipOrFail(t, err)
	}
	t.Cleanup(func() { links.Close() })

	vip4, vip6 := netip.MustParseAddr("10.96.9.1"), netip.MustParseAddr("fd00:10:96::9:1")
	must(t, d.SyncServices([]datapath.Service{
		{ID: 1, Frontend: ap(vip4, 80), Protocol: 6, Backends: []netip.AddrPort{ap(b.IPs[0], 8080)}},
		{ID: 2, Frontend: ap(vip4, 53), Protocol: 17, Backends: []netip.AddrPort{ap(b.IPs[0], 5353)}},
		{ID: 3, Frontend: ap(vip4, 82), Protocol: 6, Reject: true},
		{ID: 4, Frontend: ap(vip6, 80), Protocol: 6, Backends: []netip.AddrPort{ap(b.IPs[1], 8080)}, Algorithm: datapath.LBMaglev},
		{ID: 5, Frontend: ap(vip4, 90), Protocol: 6, Backends: []netip.AddrPort{ap(b.IPs[0], 8080), ap(b.IPs[0], 8081)}},
		{ID: 6, Frontend: ap(vip4, 91), Protocol: 6, Backends: []netip.AddrPort{ap(b.IPs[0], 8080), ap(b.IPs[0], 8081)},
			AffinityTimeout: time.Minute},
	}))
	// B's servers: TCP on both families, UDP, each answering with what it
	// got and the address it came from.
	n.In(b.NS, func() {
		for addr, tag := range map[string]string{":8080": "B:", ":8081": "B2:"} { // both families
			ln, err := net.Listen("tcp", addr)
			must(t, err)
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					buf := make([]byte, 64)
					k, _ := c.Read(buf)
					c.Write([]byte(tag + string(buf[:k])))
					c.Close()
				}
			}()
		}
		u, err := net.ListenUDP("udp", &net.UDPAddr{Port: 5353})
		must(t, err)
		t.Cleanup(func() { u.Close() })
		go func() {
			buf := make([]byte, 64)
			for {
				k, from, err := u.ReadFromUDP(buf)
				if err != nil {
					return
				}
				u.WriteToUDP([]byte("B:"+string(buf[:k])), from)
			}
		}()
	})
	netnsA := "/var/run/netns/" + a.Name
	flowsBefore := d.ServiceEntries().Flows

	t.Run("TCP connect to a ClusterIP goes straight to the backend", func(t *testing.T) {
		res := runSockChild(t, cg, sockRequest{Netns: netnsA, Op: "tcp", Target: "10.96.9.1:80", Msg: "hi"})
		if res.Err != "" || res.Answer != "B:hi" || res.Peer != "10.96.9.1:80" {
			t.Fatalf("got %+v; want B's answer with the ClusterIP as the socket's peer", res)
		}
		// On the wire the SYN already goes to B: the per-packet path saw
		// no frontend, so it kept no translation and stamped no service.
		log.await(t, "A's SYN to B:8080 on A's veth", func(ev datapath.Event) bool {
			return ev.EndpointID == 1 && ev.Direction == datapath.Egress && ev.Verdict == datapath.VerdictForwarded &&
				ev.Dst == b.IPs[0] && ev.DstPort == 8080 && ev.TCPFlags&0x02 != 0
		})
		if got := d.ServiceEntries().Flows; got != flowsBefore {
			t.Fatalf("the per-packet path translated the flow (lb_flows %d -> %d): socket LB did not", flowsBefore, got)
		}
		if d.SocketTranslations() == 0 {
			t.Fatal("no socket translation remembered")
		}
	})

	t.Run("TCP over IPv6, Maglev", func(t *testing.T) {
		res := runSockChild(t, cg, sockRequest{Netns: netnsA, Op: "tcp", Target: "[fd00:10:96::9:1]:80", Msg: "v6"})
		if res.Err != "" || res.Answer != "B:v6" || res.Peer != "[fd00:10:96::9:1]:80" {
			log.mu.Lock()
			for _, ev := range log.evs {
				t.Log(ev)
			}
			log.mu.Unlock()
			t.Fatalf("got %+v; want B's answer with the IPv6 ClusterIP as peer", res)
		}
		if got := d.ServiceEntries().Flows; got != flowsBefore {
			t.Fatalf("the per-packet path translated the IPv6 flow (lb_flows %d -> %d)", flowsBefore, got)
		}
	})

	t.Run("an IPv6 socket to an IPv4 ClusterIP (v4-mapped)", func(t *testing.T) {
		res := runSockChild(t, cg, sockRequest{Netns: netnsA, Op: "tcp6-mapped", Target: "10.96.9.1:80", Msg: "m"})
		if res.Err != "" || res.Answer != "B:m" || res.Peer != "[::ffff:10.96.9.1]:80" {
			t.Fatalf("got %+v; want B's answer with the mapped ClusterIP as peer", res)
		}
	})

	t.Run("UDP sendto and recvfrom: the reply comes from the ClusterIP", func(t *testing.T) {
		res := runSockChild(t, cg, sockRequest{Netns: netnsA, Op: "udp-sendto", Target: "10.96.9.1:53", Msg: "q"})
		if res.Err != "" || res.Answer != "B:q" || res.From != "10.96.9.1:53" {
			t.Fatalf("got %+v; want B's answer from the ClusterIP", res)
		}
		log.await(t, "A's datagram to B:5353", func(ev datapath.Event) bool {
			return ev.EndpointID == 1 && ev.Direction == datapath.Egress && ev.Protocol == 17 && ev.Dst == b.IPs[0] && ev.DstPort == 5353
		})
		if got := d.ServiceEntries().Flows; got != flowsBefore {
			t.Fatalf("the per-packet path translated the datagram (lb_flows %d -> %d)", flowsBefore, got)
		}
	})

	t.Run("connected UDP", func(t *testing.T) {
		res := runSockChild(t, cg, sockRequest{Netns: netnsA, Op: "udp-connect", Target: "10.96.9.1:53", Msg: "c"})
		if res.Err != "" || res.Answer != "B:c" || res.Peer != "10.96.9.1:53" {
			t.Fatalf("got %+v; want B's answer with the ClusterIP as peer", res)
		}
	})

	t.Run("a frontend without backends is still rejected, with its reason", func(t *testing.T) {
		start := time.Now()
		res := runSockChild(t, cg, sockRequest{Netns: netnsA, Op: "tcp", Target: "10.96.9.1:82", Msg: "x"})
		if !res.Refused {
			t.Fatalf("got %+v; want the connection refused by the per-packet path's ICMP answer", res)
		}
		if time.Since(start) > 1500*time.Millisecond {
			t.Fatalf("the refusal took %s: a timeout, not an answer", time.Since(start))
		}
		log.await(t, "the SYN to the ClusterIP dropped as SERVICE_NO_BACKEND", func(ev datapath.Event) bool {
			return droppedAs("SERVICE_NO_BACKEND", 1)(ev) && ev.Dst == vip4 && ev.DstPort == 82
		})
	})

	t.Run("a wrong port is left to the per-packet path", func(t *testing.T) {
		res := runSockChild(t, cg, sockRequest{Netns: netnsA, Op: "tcp", Target: "10.96.9.1:99", Msg: "x"})
		if res.Err == "" {
			t.Fatalf("got %+v; want a failure", res)
		}
		log.await(t, "the SYN dropped as SERVICE_WRONG_PORT", func(ev datapath.Event) bool {
			return droppedAs("SERVICE_WRONG_PORT", 1)(ev) && ev.Dst == vip4 && ev.DstPort == 99
		})
	})

	// Each connect is another process (another socket), in the same pod.
	backendsSeen := func(t *testing.T, target string) map[string]int {
		seen := map[string]int{}
		for range 12 {
			res := runSockChild(t, cg, sockRequest{Netns: netnsA, Op: "tcp", Target: target, Msg: "s"})
			if res.Err != "" || res.Peer != target {
				t.Fatalf("got %+v; want an answer with %s as peer", res, target)
			}
			seen[res.Answer]++
		}
		return seen
	}
	t.Run("random: new sockets spread over the backends", func(t *testing.T) {
		if seen := backendsSeen(t, "10.96.9.1:90"); len(seen) != 2 {
			t.Fatalf("12 connects reached %v; want both backends", seen)
		}
	})
	t.Run("ClientIP affinity: a pod's sockets keep their backend", func(t *testing.T) {
		if seen := backendsSeen(t, "10.96.9.1:91"); len(seen) != 1 {
			t.Fatalf("12 connects reached %v; want one backend, the pod's affinity", seen)
		}
	})

	t.Run("a process outside the cgroup is not translated", func(t *testing.T) {
		before := d.SocketTranslations()
		res := runSockChild(t, "", sockRequest{Netns: netnsA, Op: "tcp", Target: "10.96.9.1:80", Msg: "out"})
		if res.Err != "" || res.Answer != "B:out" || res.Peer != "10.96.9.1:80" {
			t.Fatalf("got %+v; want B's answer through the per-packet translation", res)
		}
		if got := d.ServiceEntries().Flows; got <= flowsBefore {
			t.Fatalf("lb_flows %d -> %d: the per-packet path did not translate the outside process's flow", flowsBefore, got)
		}
		if got := d.SocketTranslations(); got != before {
			t.Fatalf("socket translations %d -> %d for a process outside the cgroup", before, got)
		}
		log.await(t, "the SYN to the ClusterIP, translated on A's veth", func(ev datapath.Event) bool {
			return ev.EndpointID == 1 && ev.Direction == datapath.Egress && ev.Dst == b.IPs[0] && ev.DstPort == 8080 && ev.TCPFlags&0x02 != 0
		})
	})
}

func TestAttachCgroupNeedsSocketLB(t *testing.T) {
	d := datapathtest.Load(t)
	if _, err := d.AttachCgroup("/sys/fs/cgroup", ""); err == nil || !strings.Contains(err.Error(), "Config.SocketLB") {
		t.Fatalf("attaching without socket LB: got %v, want an error naming Config.SocketLB", err)
	}
}

func TestAttachCgroupRefusesANonCgroup2Directory(t *testing.T) {
	d := datapathtest.LoadConfig(t, datapath.Config{SocketLB: true})
	dir := t.TempDir()
	if _, err := d.AttachCgroup(dir, ""); err == nil || !strings.Contains(err.Error(), "not in a cgroup v2 hierarchy") {
		t.Fatalf("attaching to %s: got %v, want it refused as no cgroup v2 directory", dir, err)
	}
}

// Pinned cgroup links outlive the datapath that made them (an agent's
// restart), are adopted by the next one, and DetachPinnedCgroup (an agent
// started with socket LB off) removes them.
func TestPinnedCgroupLinks(t *testing.T) {
	fs := datapathtest.BPFFS(t)
	cg := testCgroup(t)
	pin := filepath.Join(fs, "cgroup")
	d1 := datapathtest.LoadConfig(t, datapath.Config{SocketLB: true, PinPath: filepath.Join(fs, "maps")})
	l1, err := d1.AttachCgroup(cg, pin)
	if err != nil {
		datapathtest.SkipOrFail(t, err)
	}
	must(t, l1.Close())
	must(t, d1.Close())
	attached := func() int {
		n := 0
		for _, hook := range []string{"connect4", "connect6", "sendmsg4", "sendmsg6", "recvmsg4", "recvmsg6", "getpeername4", "getpeername6"} {
			if _, err := os.Stat(pin + "-" + hook); err == nil {
				n++
			}
		}
		return n
	}
	if n := attached(); n != 8 {
		t.Fatalf("%d of 8 links pinned after the first datapath closed", n)
	}
	d2 := datapathtest.LoadConfig(t, datapath.Config{SocketLB: true, PinPath: filepath.Join(fs, "maps")})
	l2, err := d2.AttachCgroup(cg, pin)
	must(t, err)
	must(t, l2.Close())
	must(t, datapath.DetachPinnedCgroup(pin))
	if n := attached(); n != 0 {
		t.Fatalf("%d links still pinned after DetachPinnedCgroup", n)
	}
}
