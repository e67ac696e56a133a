package sim

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"

	"github.com/kestrelnet/kestrel/scenarios/engine"
	"github.com/kestrelnet/kestrel/sim/network"
	"github.com/kestrelnet/kestrel/sim/workload"
)

// world is what a scenario has on the sim's outside host: the servers of
// spec.world and the addresses of world sources (from: {ip, via}). Servers
// are sockets in the outside host's namespace served by this process, so
// nothing of them outlives it; the addresses it added are taken away when
// the session closes.
type world struct {
	host    OutsideHost
	servers map[netip.Addr]*worldServer
	addrs   map[netip.Addr]bool // added to the outside host by this session
	// standIns answer probes to world addresses the scenario declares no
	// server for, one per address, port and protocol.
	standIns map[standInKey]*workload.Server
}

type worldServer struct {
	ports string // the ports it serves, to notice a change
	srv   *workload.Server
}

func newWorld(host OutsideHost) *world {
	return &world{host: host, servers: map[netip.Addr]*worldServer{}, addrs: map[netip.Addr]bool{}, standIns: map[standInKey]*workload.Server{}}
}

// quiet keeps the servers' start-up lines out of the scenario report.
var quiet = slog.New(slog.DiscardHandler)

// worldName is how a world server names itself in its answers.
func worldName(a netip.Addr) string { return "world:" + a.String() }

// sync makes the running world servers those of want.
func (w *world) sync(want []engine.WorldServer) error {
	keep := map[netip.Addr]bool{}
	for _, ws := range want {
		ports := worldPorts(ws)
		keep[ws.IP] = true
		w.stopStandIns(ws.IP) // the scenario's own server takes the address
		if cur := w.servers[ws.IP]; cur != nil && cur.ports == workload.FormatPorts(ports) {
			continue
		}
		w.stop(ws.IP)
		if err := w.addAddr(ws.IP); err != nil {
			return err
		}
		var srv *workload.Server
		err := network.Do(w.host.Netns(), func() error {
			var err error
			srv, err = workload.Start(workload.Options{Pod: worldName(ws.IP), Host: ws.IP.String(), Ports: ports, Log: quiet})
			return err
		})
		if err != nil {
			return fmt.Errorf("world server %s on the outside host: %w", ws.IP, err)
		}
		w.servers[ws.IP] = &worldServer{ports: workload.FormatPorts(ports), srv: srv}
	}
	for a := range w.servers {
		if !keep[a] {
			w.stop(a)
		}
	}
	return nil
}

// worldPorts: every TCP port serves TLS, HTTP and lines (so 80 answers
// HTTP and 443 TLS, as SCENARIOS.md has it); UDP ports echo.
func worldPorts(ws engine.WorldServer) []workload.Port {
	var out []workload.Port
	for _, p := range ws.Ports {
		proto := strings.ToUpper(p.Protocol)
		out = append(out, workload.Port{Number: int(p.Port), Protocol: proto, Mux: proto == "TCP"})
	}
	return out
}

func (w *world) stop(a netip.Addr) {
	if cur := w.servers[a]; cur != nil {
		cur.srv.Close()
		delete(w.servers, a)
	}
}

// addAddr gives the outside host address a until the session closes.
func (w *world) addAddr(a netip.Addr) error {
	if w.addrs[a] {
		return nil
	}
	if err := w.host.AddAddr(a); err != nil {
		return err
	}
	w.addrs[a] = true
	return nil
}

// serves reports whether a world server answers at a for this probe: any
// of its ports for ICMP, else the probe's port and protocol.
func (w *world) serves(c *engine.Cluster, a netip.Addr, port uint16, proto string) bool {
	if c == nil {
		return false
	}
	if p := strings.ToUpper(proto); p == "ICMP" || p == "ICMPV6" {
		return slices.ContainsFunc(c.World, func(ws engine.WorldServer) bool { return ws.IP == a })
	}
	return c.Serves(a, port, proto)
}

// standIn makes the outside host answer a probe to a, a world address no
// spec.world server holds: the address (enough for ICMP) and, for TCP or
// UDP, a server on the probe's port answering as a world server does. So a
// verdict towards the world is judged on real traffic: an allowed probe
// must reach the stand-in, and a dropped one is dropped by the datapath,
// not for want of a listener. Everything stays on the outside host, a
// namespace of the sim: nothing leaves the machine.
func (w *world) standIn(a netip.Addr, port uint16, proto string) error {
	if err := w.addAddr(a); err != nil {
		return err
	}
	proto = strings.ToUpper(proto)
	if proto != "TCP" && proto != "UDP" {
		return nil
	}
	key := standInKey{a, port, proto}
	if w.standIns[key] != nil {
		return nil
	}
	var srv *workload.Server
	err := network.Do(w.host.Netns(), func() error {
		var err error
		srv, err = workload.Start(workload.Options{Pod: worldName(a), Host: a.String(),
			Ports: []workload.Port{{Number: int(port), Protocol: proto, Mux: proto == "TCP"}}, Log: quiet})
		return err
	})
	if err != nil {
		return fmt.Errorf("stand-in world server %s/%s on the outside host: %w", netip.AddrPortFrom(a, port), proto, err)
	}
	w.standIns[key] = srv
	return nil
}

type standInKey struct {
	addr  netip.Addr
	port  uint16
	proto string
}

func (w *world) stopStandIns(a netip.Addr) {
	for key, srv := range w.standIns {
		if key.addr == a {
			srv.Close()
			delete(w.standIns, key)
		}
	}
}

// close stops the servers and takes the session's addresses away.
func (w *world) close() error {
	for a := range w.servers {
		w.stop(a)
	}
	for key, srv := range w.standIns {
		srv.Close()
		delete(w.standIns, key)
	}
	var errs []error
	for a := range w.addrs {
		if err := w.host.DelAddr(a); err != nil {
			errs = append(errs, err)
		}
		delete(w.addrs, a)
	}
	return errors.Join(errs...)
}
