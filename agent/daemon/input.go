package daemon

import (
	"net"
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"

	"github.com/kestrelnet/kestrel/agent/datapathstate"
	"github.com/kestrelnet/kestrel/agent/endpoint"
)

// podsForResolve picks the pods policy is computed for: every pod with an
// address, with this node's registered pods carrying the addresses the CNI
// plugin gave them (the API learns them only after the CNI ADD returns, and
// the endpoint must be enforced before that). Host-network pods are left
// out, since their address is the node's; so are finished pods, whose
// addresses are free for reuse.
func podsForResolve(all []*corev1.Pod, records []endpoint.Record) []*corev1.Pod {
	local := map[string]endpoint.Record{}
	for _, r := range records {
		// With two sandboxes of one pod registered, the newer one's addresses win.
		if old, ok := local[r.Pod()]; !ok || r.ID > old.ID {
			local[r.Pod()] = r
		}
	}
	var out []*corev1.Pod
	for _, p := range all {
		if p.Spec.HostNetwork {
			continue
		}
		if r, ok := local[p.Namespace+"/"+p.Name]; ok {
			c := p.DeepCopy()
			c.Status.PodIPs = nil
			for _, ip := range r.IPs {
				c.Status.PodIPs = append(c.Status.PodIPs, corev1.PodIP{IP: ip.String()})
			}
			c.Status.PodIP = ""
			out = append(out, c)
			continue
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if len(podIPs(p)) > 0 {
			out = append(out, p)
		}
	}
	return dedupeByIP(out, local)
}

// dedupeByIP keeps one pod per address: a deleted pod's object can outlive
// the reuse of its address, and the datapath takes one identity per address.
// This node's registered pods win, then pods not being deleted, then the
// newer pod.
func dedupeByIP(pods []*corev1.Pod, local map[string]endpoint.Record) []*corev1.Pod {
	rank := func(p *corev1.Pod) (bool, bool, int64) {
		_, isLocal := local[p.Namespace+"/"+p.Name]
		return isLocal, p.DeletionTimestamp == nil, p.CreationTimestamp.UnixNano()
	}
	better := func(a, b *corev1.Pod) bool {
		al, ad, at := rank(a)
		bl, bd, bt := rank(b)
		if al != bl {
			return al
		}
		if ad != bd {
			return ad
		}
		return at > bt
	}
	sorted := append([]*corev1.Pod(nil), pods...)
	sort.SliceStable(sorted, func(i, j int) bool { return better(sorted[i], sorted[j]) })
	taken := map[netip.Addr]bool{}
	var out []*corev1.Pod
	for _, p := range sorted {
		ips := podIPs(p)
		clash := false
		for _, ip := range ips {
			clash = clash || taken[ip]
		}
		if clash {
			continue
		}
		for _, ip := range ips {
			taken[ip] = true
		}
		out = append(out, p)
	}
	return out
}

func podIPs(p *corev1.Pod) []netip.Addr {
	var out []netip.Addr
	for _, pip := range p.Status.PodIPs {
		if a, err := netip.ParseAddr(pip.IP); err == nil {
			out = append(out, a.Unmap())
		}
	}
	if len(out) == 0 && p.Status.PodIP != "" {
		if a, err := netip.ParseAddr(p.Status.PodIP); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// locals turns the registry into the datapath's local endpoints.
func locals(records []endpoint.Record) []datapathstate.Local {
	out := make([]datapathstate.Local, 0, len(records))
	for _, r := range records {
		out = append(out, datapathstate.Local{
			Key: r.ContainerID, Pod: r.Pod(), ID: r.ID, IPs: r.IPs, IfIndex: uint32(r.HostIfIndex), MAC: parseMAC(r.MAC),
		})
	}
	return out
}

// parseMAC reads a registered MAC; registration validated it, and a record
// without one (written by an older agent) gets none, so the datapath refuses
// the endpoint rather than binding it loosely.
func parseMAC(s string) net.HardwareAddr {
	mac, _ := net.ParseMAC(s)
	return mac
}

// nodeAddresses returns every Node's InternalIPs. This node's own address
// (from --node-ip) is included even before its Node object lists it, so the
// host identity is right from the first regeneration.
func nodeAddresses(nodes []*corev1.Node, self string, selfIP netip.Addr) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for _, n := range nodes {
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				out[n.Name] = append(out[n.Name], ip.Unmap())
			}
		}
	}
	if selfIP.IsValid() {
		found := false
		for _, ip := range out[self] {
			found = found || ip == selfIP
		}
		if !found {
			out[self] = append(out[self], selfIP)
		}
	}
	return out
}
