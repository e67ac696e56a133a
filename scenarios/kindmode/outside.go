package kindmode

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	kindcluster "github.com/kestrelnet/kestrel/kind/cluster"
	"github.com/kestrelnet/kestrel/scenarios/sim"
	"github.com/kestrelnet/kestrel/sim/network"
)

// The outside host of a kind cluster stands for the world, as sim's does: a
// container on kind's docker network beside the nodes (not a node: kind does not
// list it), running the workload image, made the first time a scenario needs
// the world and removed by `kestrel kind down`. Docker gives it its addresses,
// so no node can be given one of them later.
//
// A world address lives on its loopback, and every node routes that address
// (a /32 or /128) to the container for as long as the scenario has it: a node's
// answer to a world client, or a pod's packet masqueraded to the world, stays on
// the docker bridge instead of leaving through the docker host. A probe from
// the world via node i carries the mark viaBase+i, which routes it to node i
// (a rule and a table per node), as on sim's outside host.

// viaBase offsets the outside host's marks and tables, as sim's.
const viaBase = 100

// routeProtocol marks the nodes' routes to world addresses (Kestrel's node
// routes use 75).
const routeProtocol = 76

type outside struct {
	b        *Backend
	pid      int
	ip4, ip6 netip.Addr
}

// OutsideHost brings the cluster's outside host up if it is not.
func (b *Backend) OutsideHost() (sim.OutsideHost, error) {
	b.mu.Lock()
	o := b.outside
	b.mu.Unlock()
	if o != nil && alive(o.pid) {
		return o, nil
	}
	o, err := b.startOutside()
	if err != nil {
		return nil, fmt.Errorf("kind cluster %s: outside host: %w", b.name, err)
	}
	b.mu.Lock()
	b.outside = o
	b.mu.Unlock()
	return o, nil
}

func (b *Backend) startOutside() (*outside, error) {
	name := kindcluster.OutsideContainer(b.name)
	o, err := b.inspectOutside(name)
	if err != nil {
		_ = exec.Command("docker", "rm", "-f", name).Run()
		out, err := exec.Command("docker", "run", "-d", "--name", name, "--hostname", name,
			"--label", kindcluster.OutsideLabel+"="+b.name, "--network", "kind",
			b.workloadImage, "sim", "workload", "--pod", "outside", "--ports", "9/TCP").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("docker run %s: %v: %s", name, err, strings.TrimSpace(string(out)))
		}
		if o, err = b.inspectOutside(name); err != nil {
			return nil, err
		}
	}
	ns := fmt.Sprintf("/proc/%d/ns/net", o.pid)
	// rp_filter off: a pod's packet that no node masqueraded comes from a pod
	// address the outside host has no route to; it is received all the same
	// (a server may see it), only the answer cannot leave.
	err = network.Do(ns, func() error {
		for _, key := range []string{"all", "default", "eth0"} {
			p := filepath.Join("/proc/sys/net/ipv4/conf", key, "rp_filter")
			if err := os.WriteFile(p, []byte("0"), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := withHandle(ns, func(h *netlink.Handle) error { return o.viaRoutes(h) }); err != nil {
		return nil, err
	}
	return o, nil
}

// inspectOutside reads the running container's init PID and addresses on kind's network.
func (b *Backend) inspectOutside(name string) (*outside, error) {
	out, err := exec.Command("docker", "inspect", "--format",
		`{{.State.Running}} {{.State.Pid}} {{with index .NetworkSettings.Networks "kind"}}{{.IPAddress}} {{.GlobalIPv6Address}}{{end}}`, name).Output()
	if err != nil {
		return nil, fmt.Errorf("docker inspect %s: %w", name, err)
	}
	f := strings.Fields(string(out))
	if len(f) < 3 || f[0] != "true" {
		return nil, fmt.Errorf("%s is not running on kind's network (%q)", name, strings.TrimSpace(string(out)))
	}
	o := &outside{b: b}
	if o.pid, err = strconv.Atoi(f[1]); err != nil {
		return nil, fmt.Errorf("%s: pid %q", name, f[1])
	}
	if o.ip4, err = netip.ParseAddr(f[2]); err != nil {
		return nil, fmt.Errorf("%s: address %q", name, f[2])
	}
	if len(f) > 3 {
		o.ip6, _ = netip.ParseAddr(f[3])
	}
	return o, nil
}

func withHandle(nsPath string, f func(*netlink.Handle) error) error {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", nsPath, err)
	}
	defer h.Close()
	if err := f(h); err != nil {
		return fmt.Errorf("netns %s: %w", nsPath, err)
	}
	return nil
}

// viaRoutes: table viaBase+i sends everything to node i, and packets marked
// viaBase+i use it, in both families.
func (o *outside) viaRoutes(h *netlink.Handle) error {
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		return err
	}
	for i := 1; i <= len(o.b.NodeNames()); i++ {
		for _, v6 := range []bool{false, true} {
			gw := o.b.NodeIP(i, v6)
			if !gw.IsValid() || (v6 && !o.ip6.IsValid()) {
				continue
			}
			def := &netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.IP(gw.AsSlice()), Table: viaBase + i,
				Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}}
			fam := netlink.FAMILY_V4
			if v6 {
				def.Dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
				fam = netlink.FAMILY_V6
			}
			if err := h.RouteReplace(def); err != nil {
				return fmt.Errorf("table %d: default via %s: %w", viaBase+i, gw, err)
			}
			r := netlink.NewRule()
			r.Family = fam
			r.Mark = uint32(viaBase + i)
			mask := ^uint32(0)
			r.Mask = &mask
			r.Table = viaBase + i
			r.Priority = 1000 + i
			if err := h.RuleAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("rule fwmark %d lookup %d: %w", r.Mark, r.Table, err)
			}
		}
	}
	return nil
}

// OutsideClient brings the outside host up if it is not, and returns its
// network namespace and its IPv4 address on kind's network: a client run
// there comes to the nodes from outside the cluster, as the world does.
func (b *Backend) OutsideClient() (netns string, ip4 netip.Addr, err error) {
	h, err := b.OutsideHost()
	if err != nil {
		return "", netip.Addr{}, err
	}
	o := h.(*outside)
	return o.Netns(), o.ip4, nil
}

func (o *outside) Netns() string        { return fmt.Sprintf("/proc/%d/ns/net", o.pid) }
func (o *outside) ViaMark(i int) uint32 { return uint32(viaBase + i) }

func (o *outside) AddAddr(a netip.Addr) error { return o.worldAddr(a, true) }
func (o *outside) DelAddr(a netip.Addr) error { return o.worldAddr(a, false) }

// worldAddr puts a on the outside host's loopback and a route to it into every
// node, or takes both away.
func (o *outside) worldAddr(a netip.Addr, add bool) error {
	gw := o.ip4
	if a.Is6() {
		gw = o.ip6
	}
	if !gw.IsValid() {
		return fmt.Errorf("world address %s: the outside host has no address of its family on kind's network", a)
	}
	dst := &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}
	err := withHandle(o.Netns(), func(h *netlink.Handle) error {
		lo, err := h.LinkByName("lo")
		if err != nil {
			return err
		}
		na := &netlink.Addr{IPNet: dst}
		if a.Is6() {
			// No duplicate address detection: a server binds to it at once
			// (a tentative address cannot be bound).
			na.Flags = unix.IFA_F_NODAD
		}
		if add {
			return h.AddrReplace(lo, na)
		}
		if err := h.AddrDel(lo, na); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := 1; i <= len(o.b.NodeNames()); i++ {
		ns, err := o.b.NodeNetns(i)
		if err != nil {
			return err
		}
		err = withHandle(ns, func(h *netlink.Handle) error {
			eth0, err := h.LinkByName("eth0")
			if err != nil {
				return err
			}
			r := &netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: dst, Gw: net.IP(gw.AsSlice()), Protocol: routeProtocol}
			if add {
				return h.RouteReplace(r)
			}
			if err := h.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
				return err
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("node %d: route to world address %s: %w", i, a, err)
		}
	}
	return nil
}
