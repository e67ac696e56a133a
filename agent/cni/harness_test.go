package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/kestrelnet/kestrel/agent/api"
)

// pluginDir holds the kestrel-cni binary built once for all tests: the
// tests drive it the way a runtime does, through libcni and exec.
var pluginDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kestrel-cni-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(dir, PluginType), "github.com/kestrelnet/kestrel/tools/kestrel-cni")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build kestrel-cni:", err)
		os.Exit(1)
	}
	pluginDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// skipOrFail skips when a kernel feature is absent, naming it, unless CI
// sets KESTREL_REQUIRE_PRIVILEGED=1; anything else (lacking root included)
// fails the test.
func skipOrFail(t *testing.T, feature string, err error) {
	t.Helper()
	absent := errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS)
	if absent && os.Getenv("KESTREL_REQUIRE_PRIVILEGED") != "1" {
		t.Skipf("kernel feature %s unavailable: %v", feature, err)
	}
	t.Fatalf("%s: %v", feature, err)
}

// fakeAgent serves agent/api on a unix socket and records what it is told.
type fakeAgent struct {
	socket string
	srv    *http.Server

	mu      sync.Mutex
	puts    []api.EndpointRequest
	deletes []string
	failPut atomic.Pointer[string] // when set, PUT answers 500 with this message
}

func startFakeAgent(t *testing.T) *fakeAgent {
	// A short dir: unix socket paths are limited to 108 bytes, which
	// t.TempDir under a long test name can exceed.
	dir, err := os.MkdirTemp("", "kcni")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	a := &fakeAgent{socket: filepath.Join(dir, "agent.sock")}
	a.start(t)
	t.Cleanup(a.stop)
	return a
}

func (a *fakeAgent) start(t *testing.T) {
	t.Helper()
	os.Remove(a.socket)
	ln, err := net.Listen("unix", a.socket)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT "+api.PathEndpoints+"{id}", func(w http.ResponseWriter, r *http.Request) {
		var req api.EndpointRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		if req.ContainerID != r.PathValue("id") {
			writeError(w, http.StatusBadRequest, "containerID does not match the path")
			return
		}
		if msg := a.failPut.Load(); msg != nil {
			writeError(w, http.StatusInternalServerError, *msg)
			return
		}
		a.mu.Lock()
		a.puts = append(a.puts, req)
		a.mu.Unlock()
		json.NewEncoder(w).Encode(api.EndpointResponse{ID: 1, Identity: 256})
	})
	mux.HandleFunc("DELETE "+api.PathEndpoints+"{id}", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.deletes = append(a.deletes, r.PathValue("id"))
		a.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("GET "+api.PathHealthz, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	a.srv = &http.Server{Handler: mux}
	go a.srv.Serve(ln)
}

// stop shuts the agent down and removes its socket, as a crashed agent
// whose socket file was cleaned up would look.
func (a *fakeAgent) stop() {
	a.srv.Close()
	os.Remove(a.socket)
}

func (a *fakeAgent) recorded() ([]api.EndpointRequest, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]api.EndpointRequest(nil), a.puts...), append([]string(nil), a.deletes...)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(api.Error{Message: msg})
}

// env is one test's world: a fresh "node" netns standing for the node the
// plugin runs in, a fake agent, an IPAM dir and a libcni runtime.
type env struct {
	t       *testing.T
	node    netns.NsHandle
	nodeNL  *netlink.Handle
	agent   *fakeAgent
	ipamDir string
	cidrs   []string
	gateway string // "" leaves the field out
	cni     *libcni.CNIConfig
	pods    int
}

// Addresses of the node netns. nodeAddr sits on an "uplink" with the
// node's default route, as a real node's underlay address would: proxy ARP
// answers for the gateway only when the node routes it through an
// interface other than the asking veth.
const (
	nodeAddr  = "192.0.2.1"
	nodeAddr6 = "2001:db8::1"
)

func newEnv(t *testing.T, gateway string, cidrs ...string) *env {
	t.Helper()
	e := &env{t: t, cidrs: cidrs, gateway: gateway, agent: startFakeAgent(t)}
	e.node, _ = newNetns(t, "node")
	nl, err := netlink.NewHandleAt(e.node)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nl.Delete)
	e.nodeNL = nl
	lo, err := nl.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	must(t, nl.LinkSetUp(lo))
	// A veth pair whose far end stays in the node netns: this kernel may
	// lack the dummy driver, and the plugin needs veth anyway.
	uplink := &netlink.Veth{LinkAttrs: netlink.NewLinkAttrs(), PeerName: "uplink-peer", PeerTxQLen: -1}
	uplink.Name = "uplink"
	if err := nl.LinkAdd(uplink); err != nil {
		skipOrFail(t, "veth interfaces (CONFIG_VETH)", err)
	}
	peer, err := nl.LinkByName("uplink-peer")
	if err != nil {
		t.Fatal(err)
	}
	must(t, nl.LinkSetUp(peer))
	must(t, nl.LinkSetUp(uplink))
	addr, _ := netlink.ParseAddr(nodeAddr + "/24")
	must(t, nl.AddrAdd(uplink, addr))
	_, all, _ := net.ParseCIDR("0.0.0.0/0")
	must(t, nl.RouteAdd(&netlink.Route{LinkIndex: uplink.Attrs().Index, Dst: all, Scope: netlink.SCOPE_LINK}))
	addr6, _ := netlink.ParseAddr(nodeAddr6 + "/64")
	addr6.Flags = unix.IFA_F_NODAD
	must(t, nl.AddrAdd(uplink, addr6))
	_, all6, _ := net.ParseCIDR("::/0")
	must(t, nl.RouteAdd(&netlink.Route{LinkIndex: uplink.Attrs().Index, Dst: all6}))

	dir := t.TempDir()
	e.ipamDir = filepath.Join(dir, "ipam")
	e.cni = libcni.NewCNIConfigWithCacheDir([]string{pluginDir}, filepath.Join(dir, "cache"), nil)
	return e
}

// newNetns makes a named netns (unique per test process) and deletes it
// when the test ends. Creating it moves the calling thread in, so the
// thread is locked and moved back.
func newNetns(t *testing.T, role string) (netns.NsHandle, string) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	name := fmt.Sprintf("kcni-%d-%s-%d", os.Getpid(), role, nsSeq.Add(1))
	h, err := netns.NewNamed(name)
	if serr := netns.Set(orig); serr != nil {
		// This thread is in the wrong netns: keep it locked so it dies with
		// the goroutine instead of serving others.
		runtime.LockOSThread()
		t.Fatalf("restore netns: %v", serr)
	}
	if err != nil {
		skipOrFail(t, "network namespaces (CONFIG_NET_NS)", err)
	}
	t.Cleanup(func() {
		h.Close()
		netns.DeleteNamed(name)
	})
	return h, filepath.Join("/var/run/netns", name)
}

var nsSeq atomic.Int64

// pod is a pod netns and the runtime's view of it.
type pod struct {
	id   string // container ID
	ns   netns.NsHandle
	path string
	nl   *netlink.Handle
}

func (e *env) newPod() *pod {
	e.t.Helper()
	e.pods++
	h, path := newNetns(e.t, fmt.Sprintf("pod%d", e.pods))
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nl.Delete)
	return &pod{id: fmt.Sprintf("c0ffee%02d%s", e.pods, strings.Repeat("ab", 8)), ns: h, path: path, nl: nl}
}

// conflist is the network config as the sim writes it.
func (e *env) conflist(version string, extra string) *libcni.NetworkConfigList {
	e.t.Helper()
	l, err := libcni.ConfListFromBytes([]byte(e.conflistJSON(version, extra)))
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

func (e *env) conflistJSON(version, extra string) string {
	cidrs, _ := json.Marshal(e.cidrs)
	if e.gateway != "" {
		extra = fmt.Sprintf(`, "gateway": %q`, e.gateway) + extra
	}
	return fmt.Sprintf(`{"cniVersion": %q, "name": "kestrel", "plugins": [{
		"type": "kestrel-cni", "agentSocket": %q, "podCIDRs": %s, "ipamDir": %q%s}]}`,
		version, e.agent.socket, cidrs, e.ipamDir, extra)
}

func (e *env) runtimeConf(p *pod, args ...[2]string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: p.id,
		NetNS:       p.path,
		IfName:      "eth0",
		Args:        append([][2]string{{"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", "web-" + p.id[:8]}}, args...),
	}
}

// inNode runs fn on a thread in the node netns: the plugin makes the host
// veth in the netns it is started in, and a child process starts in the
// netns of the thread that forks it.
func (e *env) inNode(fn func()) { inNetns(e.t, e.node, fn) }

func inNetns(t *testing.T, h netns.NsHandle, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(h); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			t.Errorf("restore netns: %v", err) // the thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

func (e *env) add(l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (res types.Result, err error) {
	e.inNode(func() { res, err = e.cni.AddNetworkList(context.Background(), l, rt) })
	return res, err
}

func (e *env) del(l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (err error) {
	e.inNode(func() { err = e.cni.DelNetworkList(context.Background(), l, rt) })
	return err
}

func (e *env) check(l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (err error) {
	e.inNode(func() { err = e.cni.CheckNetworkList(context.Background(), l, rt) })
	return err
}

func (e *env) status(l *libcni.NetworkConfigList) (err error) {
	e.inNode(func() { err = e.cni.GetStatusNetworkList(context.Background(), l) })
	return err
}

// ipamFiles lists the allocation records (files named by an address).
func (e *env) ipamFiles() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(e.ipamDir)
	if errors.Is(err, os.ErrNotExist) {
		return out
	}
	if err != nil {
		e.t.Fatal(err)
	}
	for _, en := range entries {
		if net.ParseIP(en.Name()) == nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(e.ipamDir, en.Name()))
		if err != nil {
			e.t.Fatal(err)
		}
		out[en.Name()] = string(b)
	}
	return out
}

func (e *env) hostLink(p *pod) (netlink.Link, bool) {
	l, err := e.nodeNL.LinkByName(HostIfName(p.id))
	return l, err == nil
}

func (e *env) sysctl(path string) (v string) {
	e.inNode(func() {
		b, err := os.ReadFile(filepath.Join("/proc/sys", path))
		if err != nil {
			e.t.Fatal(err)
		}
		v = strings.TrimSpace(string(b))
	})
	return v
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// addPod ADDs a new pod with the 1.0.0 conflist and returns its result and
// both ends of its veth (host side in the node netns, eth0 in the pod).
func (e *env) addPod(t *testing.T) (*pod, *types100.Result, netlink.Link, netlink.Link) {
	t.Helper()
	p := e.newPod()
	res, err := e.add(e.conflist("1.0.0", ""), e.runtimeConf(p))
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		t.Fatal(err)
	}
	host, ok := e.hostLink(p)
	if !ok {
		t.Fatalf("host veth %s missing in the node netns", HostIfName(p.id))
	}
	eth0, err := p.nl.LinkByName("eth0")
	if err != nil {
		t.Fatalf("eth0 missing in the pod netns: %v", err)
	}
	return p, r, host, eth0
}
