package daemon

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/agent/policy"
	dnsproxy "github.com/kestrelnet/kestrel/agent/proxy/dns"
	"github.com/kestrelnet/kestrel/datapath"
)

// startDNSProxies runs the node's DNS proxy, on UDP (both families) and
// TCP, after startProxies made the node deliver redirected packets to it.
// It serves egress only: DNS rules on ingress are refused at validation, as
// Cilium refuses them, so nothing redirects to policy.ProxyPortDNSIngress.
func (d *Daemon) startDNSProxies(ctx context.Context) error {
	for _, p := range []struct {
		dir  policy.Direction
		port uint16
	}{{policy.Egress, policy.ProxyPortDNSEgress}} {
		s := &dnsproxy.Server{Direction: p.dir, Resolver: &d.l7, Learn: d.learnFQDNs, Observe: d.recordDNS}
		ln, err := datapath.ListenProxy(ctx, p.port)
		if err != nil {
			return err
		}
		go func() {
			if err := s.ServeTCP(ln); err != nil && !errors.Is(err, net.ErrClosed) {
				d.log.Error("DNS proxy stopped", "direction", p.dir, "proto", "tcp", "err", err)
			}
		}()
		closers := []func() error{ln.Close}
		for _, network := range []string{"udp4", "udp6"} {
			pc, err := dnsproxy.ListenUDP(ctx, network, p.port)
			if err != nil && network == "udp6" {
				// A node without IPv6 has no IPv6 queries to serve.
				d.log.Warn("DNS proxy without IPv6 over UDP", "direction", p.dir, "err", err)
				continue
			}
			if err != nil {
				return err
			}
			closers = append(closers, pc.Close)
			go func() {
				if err := s.ServeUDP(pc); err != nil && !errors.Is(err, net.ErrClosed) {
					d.log.Error("DNS proxy stopped", "direction", p.dir, "proto", network, "err", err)
				}
			}()
		}
		go func() {
			<-ctx.Done()
			for _, c := range closers {
				c()
			}
		}()
		d.log.Info("DNS proxy listening", "direction", p.dir, "port", p.port)
	}
	return nil
}

// learnFQDNs records an allowed answer's addresses and, when they are new,
// regenerates before returning: toFQDNs selectors then select them, with
// identities in the ipcache and keys in the policy maps, before the DNS
// proxy releases the answer to the pod.
func (d *Daemon) learnFQDNs(endpoint uint32, answers []dnsproxy.Answer) error {
	grew := false
	for _, a := range answers {
		if d.fqdns.Update(endpoint, a.Name, a.IPs, a.TTL) {
			grew = true
		}
	}
	if !grew {
		// A refreshed TTL is saved by the next expiry tick (within a
		// second), not by a file write per answer.
		d.fqdnDirty.Store(true)
		return nil
	}
	d.saveFQDNs()
	return d.regenerate()
}

// expireFQDNs forgets answers whose TTL ran out, and regenerates so the
// identities and keys they gave go too.
func (d *Daemon) expireFQDNs(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		gone := d.fqdns.Expire()
		if d.fqdnDirty.Swap(false) || gone {
			d.saveFQDNs()
		}
		if gone {
			d.trigger()
		}
	}
}

// FQDNCache implements api.FQDNSource.
func (d *Daemon) FQDNCache() api.FQDNCache {
	d.mu.Lock()
	var cidrs map[netip.Prefix]uint32
	if d.identityAlloc != nil {
		cidrs = map[netip.Prefix]uint32{}
		for p, id := range d.identityAlloc.CIDRs() {
			cidrs[p] = uint32(id)
		}
	}
	d.mu.Unlock()
	out := api.FQDNCache{Entries: []api.FQDNCacheEntry{}, MinTTL: uint32(d.cfg.ToFQDNsMinTTL / time.Second)}
	for _, e := range d.fqdns.List() {
		out.Entries = append(out.Entries, api.FQDNCacheEntry{Endpoint: e.Endpoint, Name: e.Name, IP: e.IP.String(), TTL: e.TTL,
			LookupTime: e.LookupTime, Expires: e.Expires, Identity: cidrs[netip.PrefixFrom(e.IP, e.IP.BitLen())]})
	}
	return out
}

// recordDNS keeps one DNS proxy decision as a flow with its DNS fields.
func (d *Daemon) recordDNS(r dnsproxy.Record) {
	if r.Conn == nil {
		// Not redirected by the datapath (or unresolvable): nothing was
		// answered or forwarded.
		d.log.Debug("DNS query not served", "client", r.Client, "server", r.Server, "err", r.UpstreamErr)
		return
	}
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	f := api.Flow{
		TimeNs:    uint64(ts.Nano()),
		Node:      d.cfg.Node,
		Src:       r.Client.Addr().String(),
		Dst:       r.Server.Addr().String(),
		SrcPort:   r.Client.Port(),
		DstPort:   r.Server.Port(),
		Protocol:  17,
		Direction: r.Direction.String(),
		Verdict:   "forwarded",
		CT:        "l7",
		L7: &api.L7Flow{Type: "dns", DNS: &api.DNSFlow{Query: r.Decision.Query, Rcode: r.Rcode, TTL: r.TTL},
			LatencyNs: uint64(r.Latency.Nanoseconds())},
	}
	if r.Proto == "tcp" {
		f.Protocol = 6
	}
	if r.Decision.QType != "" {
		f.L7.DNS.QTypes = []string{r.Decision.QType}
	}
	for _, ip := range r.IPs {
		f.L7.DNS.IPs = append(f.L7.DNS.IPs, ip.String())
	}
	c := r.Conn
	f.EndpointID, f.SrcIdentity, f.DstIdentity, f.Policies = c.EndpointID, c.SrcIdentity, c.DstIdentity, c.Policies
	if !r.Decision.Allowed {
		f.Verdict, f.Reason = "dropped", "POLICY_DENIED"
	}
	if r.LearnErr != nil {
		d.log.Error("toFQDNs: answered addresses not applied before release", "query", r.Decision.Query, "err", r.LearnErr)
	}
	f.TimeUnixNs = int64(f.TimeNs) + d.monoToUnix
	client, server := r.Client.Addr().Unmap(), r.Server.Addr().Unmap()
	peers := d.peers.Load()
	f.SrcPeer, f.DstPeer = peers.peer(client, f.SrcIdentity), peers.peer(server, f.DstIdentity)
	d.keepFlow(f)
}
