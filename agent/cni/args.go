package cni

import (
	"fmt"
	"net/netip"
	"strings"
)

// podArgs are the CNI_ARGS this plugin reads.
type podArgs struct {
	Namespace string // K8S_POD_NAMESPACE
	Name      string // K8S_POD_NAME
	// IPs is KESTREL_IP, the pod annotation kestrel.dev/ip: the addresses the
	// pod asks for, comma-separated, at most one per family. A family it
	// does not name gets any free address.
	IPs []netip.Addr
}

// parseArgs reads CNI_ARGS ("K=V;K=V"). Runtimes pass keys of their own
// (K8S_POD_UID, K8S_POD_INFRA_CONTAINER_ID, IgnoreUnknown...), so unknown keys
// are skipped rather than refused; a malformed pair or a bad KESTREL_IP is an
// error because acting on half of it would give the pod the wrong address.
func parseArgs(s string) (podArgs, error) {
	var a podArgs
	if s == "" {
		return a, nil
	}
	for _, kv := range strings.Split(s, ";") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return a, fmt.Errorf("CNI_ARGS: %q is not KEY=VALUE", kv)
		}
		switch k {
		case "K8S_POD_NAMESPACE":
			a.Namespace = v
		case "K8S_POD_NAME":
			a.Name = v
		case "KESTREL_IP":
			ips, err := parseRequestedIPs(v)
			if err != nil {
				return a, fmt.Errorf("CNI_ARGS KESTREL_IP: %w", err)
			}
			a.IPs = ips
		}
	}
	return a, nil
}

// parseRequestedIPs reads "IP[,IP]": one address per family at most, since
// a pod gets exactly one of each family its node has a CIDR for.
func parseRequestedIPs(v string) ([]netip.Addr, error) {
	var out []netip.Addr
	for i, f := range strings.Split(v, ",") {
		ip, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil || ip.Zone() != "" {
			return nil, fmt.Errorf("[%d] %q is not an IP address", i, f)
		}
		ip = ip.Unmap()
		for j, o := range out {
			if o.Is6() == ip.Is6() {
				return nil, fmt.Errorf("[%d] %s and [%d] %s are both %s: a pod gets one address per family", j, o, i, ip, family(ip))
			}
		}
		out = append(out, ip)
	}
	return out, nil
}

// family names ip's address family as Kubernetes does.
func family(ip netip.Addr) string {
	if ip.Is6() {
		return "IPv6"
	}
	return "IPv4"
}
