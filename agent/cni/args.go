package cni

import (
	"fmt"
	"net/netip"
	"strings"
)

// podArgs are the CNI_ARGS this plugin reads.
type podArgs struct {
	Namespace string     // K8S_POD_NAMESPACE
	Name      string     // K8S_POD_NAME
	IP        netip.Addr // KESTREL_IP: the pod annotation kestrel.dev/ip; invalid when absent
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
			ip, err := netip.ParseAddr(v)
			if err != nil || !ip.Is4() {
				return a, fmt.Errorf("CNI_ARGS KESTREL_IP: %q is not an IPv4 address", v)
			}
			a.IP = ip
		}
	}
	return a, nil
}
