package datapath

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// ProxiedUDPFlow is ProxiedFlow for a UDP flow (the DNS proxy's queries):
// the conntrack entry lives in the table of protocols other than TCP.
func (d *Datapath) ProxiedUDPFlow(dir Direction, client, orig netip.AddrPort) (ProxiedFlow, bool, error) {
	var k lxcCtKey
	var fam uint8
	k.Saddr.Addr, fam = addrWords(client.Addr())
	k.Daddr.Addr, _ = addrWords(orig.Addr())
	k.Sport, k.Dport = client.Port(), orig.Port()
	k.Proto, k.Family, k.Direction = 17, fam, uint8(dir)
	var e lxcCtEntry
	if err := d.objs.CtAny.Lookup(&k, &e); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return ProxiedFlow{}, false, nil
		}
		return ProxiedFlow{}, false, fmt.Errorf("conntrack lookup: %w", err)
	}
	if e.ProxyPort == 0 {
		return ProxiedFlow{}, false, nil
	}
	return ProxiedFlow{RemoteIdentity: e.RemoteIdentity, ProxyPort: e.ProxyPort, Cookie: e.Cookie}, true, nil
}
