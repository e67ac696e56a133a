package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/agent/proxy"
	httpproxy "github.com/kestrelnet/kestrel/agent/proxy/http"
	"github.com/kestrelnet/kestrel/datapath"
)

// startProxies runs the node's HTTP proxies, one per direction on the ports
// the policy's redirect entries name, after making the node deliver the
// datapath's redirected packets to them. The agent runs in the node's
// namespace, so its listeners and routing are the node's. A datapath that
// keeps no conntrack of redirected flows (the control loop's test double)
// gets no proxies: redirected flows then drop as PROXY_UNAVAILABLE.
func (d *Daemon) startProxies(ctx context.Context) error {
	ct, ok := d.dp.(proxy.Conntrack)
	if !ok {
		return nil
	}
	d.l7.CT = ct
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("proxy routing: %w", err)
	}
	defer h.Close()
	if err := datapath.InstallProxyRouting(h); err != nil {
		return err
	}
	if err := datapath.ProxySysctls(); err != nil {
		return err
	}
	for _, p := range []struct {
		dir  policy.Direction
		port uint16
	}{{policy.Ingress, policy.ProxyPortHTTPIngress}, {policy.Egress, policy.ProxyPortHTTPEgress}} {
		ln, err := datapath.ListenProxy(ctx, p.port)
		if err != nil {
			return err
		}
		s := &httpproxy.Server{Direction: p.dir, Resolver: &d.l7, Observe: d.recordL7}
		go func() {
			if err := s.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
				d.log.Error("HTTP proxy stopped", "direction", p.dir, "err", err)
			}
		}()
		go func() { <-ctx.Done(); ln.Close() }()
		d.log.Info("HTTP proxy listening", "direction", p.dir, "port", p.port)
	}
	if err := d.startTLSProxies(ctx); err != nil {
		return err
	}
	return d.startDNSProxies(ctx)
}

// recordL7 keeps one proxy decision as a flow with its HTTP fields.
func (d *Daemon) recordL7(r httpproxy.Record) {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	f := api.Flow{
		TimeNs:    uint64(ts.Nano()),
		Node:      d.cfg.Node,
		Src:       r.Client.Addr().String(),
		Dst:       r.Server.Addr().String(),
		SrcPort:   r.Client.Port(),
		DstPort:   r.Server.Port(),
		Protocol:  6,
		Direction: r.Direction.String(),
		Verdict:   "forwarded",
		CT:        "l7",
		L7: &api.L7Flow{Type: "http", HTTP: &api.HTTPFlow{Method: r.Method, URL: r.URL, Protocol: r.Protocol, Code: r.Status},
			LatencyNs: uint64(r.Latency.Nanoseconds())},
	}
	if c := r.Conn; c != nil {
		f.EndpointID, f.SrcIdentity, f.DstIdentity, f.Policies = c.EndpointID, c.SrcIdentity, c.DstIdentity, c.Policies
	}
	if !r.Allowed {
		f.Verdict, f.Reason = "dropped", "POLICY_DENIED"
	}
	f.TimeUnixNs = int64(f.TimeNs) + d.monoToUnix
	client, server := r.Client.Addr().Unmap(), r.Server.Addr().Unmap()
	peers := d.peers.Load()
	f.SrcPeer, f.DstPeer = peers.peer(client, f.SrcIdentity), peers.peer(server, f.DstIdentity)
	d.keepFlow(f)
}
