package daemon

import (
	"context"
	"errors"
	"net"

	"golang.org/x/sys/unix"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/agent/policy"
	kafkaproxy "github.com/kestrelnet/kestrel/agent/proxy/kafka"
	"github.com/kestrelnet/kestrel/datapath"
)

// startKafkaProxies runs the node's Kafka proxies, one per direction, on
// the ports Kafka rules redirect to (startProxies has set up the routing).
func (d *Daemon) startKafkaProxies(ctx context.Context) error {
	for _, p := range []struct {
		dir  policy.Direction
		port uint16
	}{{policy.Ingress, policy.ProxyPortKafkaIngress}, {policy.Egress, policy.ProxyPortKafkaEgress}} {
		ln, err := datapath.ListenProxy(ctx, p.port)
		if err != nil {
			return err
		}
		s := &kafkaproxy.Server{Direction: p.dir, Resolver: &d.l7, Observe: d.recordKafka}
		go func() {
			if err := s.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
				d.log.Error("Kafka proxy stopped", "direction", p.dir, "err", err)
			}
		}()
		go func() { <-ctx.Done(); ln.Close() }()
		d.log.Info("Kafka proxy listening", "direction", p.dir, "port", p.port)
	}
	return nil
}

// recordKafka keeps one Kafka decision as a flow with its apiKey and topics.
func (d *Daemon) recordKafka(r kafkaproxy.Record) {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	f := api.Flow{
		TimeNs: uint64(ts.Nano()), Node: d.cfg.Node,
		Src: r.Client.Addr().String(), Dst: r.Server.Addr().String(), SrcPort: r.Client.Port(), DstPort: r.Server.Port(),
		Protocol: 6, Direction: r.Direction.String(), Verdict: "forwarded", CT: "l7",
		L7: &api.L7Flow{Type: "kafka", Kafka: &api.KafkaFlow{APIKey: kafkaproxy.KeyName(r.Key), APIVersion: r.Version,
			CorrelationID: r.Correlation, ClientID: r.ClientID, Topics: r.Topics, ErrorCode: r.ErrorCode}},
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
