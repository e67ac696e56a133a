package daemon

import (
	"context"
	"errors"
	"net"

	"golang.org/x/sys/unix"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/agent/policy"
	tlsproxy "github.com/kestrelnet/kestrel/agent/proxy/tls"
	"github.com/kestrelnet/kestrel/datapath"
)

// startTLSProxies runs the node's TLS server-name proxies, one per
// direction, on the ports serverNames rules redirect to (startProxies has
// set up the routing).
func (d *Daemon) startTLSProxies(ctx context.Context) error {
	for _, p := range []struct {
		dir  policy.Direction
		port uint16
	}{{policy.Ingress, policy.ProxyPortTLSIngress}, {policy.Egress, policy.ProxyPortTLSEgress}} {
		ln, err := datapath.ListenProxy(ctx, p.port)
		if err != nil {
			return err
		}
		s := &tlsproxy.Server{Direction: p.dir, Resolver: &d.l7, Observe: d.recordTLS}
		go func() {
			if err := s.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
				d.log.Error("TLS proxy stopped", "direction", p.dir, "err", err)
			}
		}()
		go func() { <-ctx.Done(); ln.Close() }()
		d.log.Info("TLS proxy listening", "direction", p.dir, "port", p.port)
	}
	return d.startKafkaProxies(ctx)
}

// recordTLS keeps one TLS decision as a flow with its server name.
func (d *Daemon) recordTLS(r tlsproxy.Record) {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	f := api.Flow{
		TimeNs: uint64(ts.Nano()), Node: d.cfg.Node,
		Src: r.Client.Addr().String(), Dst: r.Server.Addr().String(), SrcPort: r.Client.Port(), DstPort: r.Server.Port(),
		Protocol: 6, Direction: r.Direction.String(), Verdict: "forwarded", CT: "l7",
		L7: &api.L7Flow{Type: "tls", TLS: &api.TLSFlow{ServerName: r.ServerName, NotTLS: r.NotTLS}, LatencyNs: uint64(r.Latency.Nanoseconds())},
	}
	if c := r.Conn; c != nil {
		f.EndpointID, f.SrcIdentity, f.DstIdentity, f.Policies = c.EndpointID, c.SrcIdentity, c.DstIdentity, c.Policies
	}
	if !r.Allowed {
		f.Verdict, f.Reason = "dropped", "POLICY_DENIED"
	}
	f.TimeUnixNs = int64(f.TimeNs) + d.monoToUnix
	peers := d.peers.Load()
	f.SrcPeer, f.DstPeer = peers.peer(r.Client.Addr().Unmap(), f.SrcIdentity), peers.peer(r.Server.Addr().Unmap(), f.DstIdentity)
	d.keepFlow(f)
}
