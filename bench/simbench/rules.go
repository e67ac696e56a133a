package simbench

import (
	"fmt"
	"os/exec"
	"strings"

	"github.com/kestrelnet/kestrel/bench/metrics"
	"github.com/kestrelnet/kestrel/sim/cluster"
	"github.com/kestrelnet/kestrel/sim/network"
)

// countRules counts the rules kube-proxy wrote in d's node, read with its
// own backend's tool (so a count also shows which backend holds them):
// IPv4 nat and filter rules for iptables, the rules of the ip kube-proxy
// table for nftables.
func countRules(d datapath) (int, error) {
	ns := network.NodeNetns(ClusterName, d.Node)
	var argv []string
	switch d.Mode {
	case cluster.KubeProxyIPTablesLegacy:
		argv = []string{"iptables-legacy-save"}
	case cluster.KubeProxyIPTablesNFT:
		argv = []string{"iptables-nft-save"}
	case cluster.KubeProxyNFTables:
		argv = []string{"nft", "list", "table", "ip", "kube-proxy"}
	default:
		return 0, fmt.Errorf("%s has no kube-proxy", d.Name)
	}
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...).Output()
	if err != nil {
		return 0, fmt.Errorf("%s: %v: %w", d.Name, argv, err)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case d.Mode != cluster.KubeProxyNFTables && strings.HasPrefix(line, "-A "):
			n++
		case d.Mode == cluster.KubeProxyNFTables && line != "" && line != "}" && !strings.HasSuffix(line, "{") &&
			!strings.HasPrefix(line, "type ") && !strings.HasPrefix(line, "flags ") && !strings.HasPrefix(line, "elements ") && !strings.HasPrefix(line, "comment "):
			// Rules, and the elements of maps and sets continued on
			// their own lines.
			n++
		}
	}
	return n, nil
}

// recordRules adds each kube-proxy's rule count at n services.
func (r *runner) recordRules(n int) {
	for _, d := range datapaths {
		if d.Mode == "" || r.lagging[d.Name] {
			continue
		}
		c, err := countRules(d)
		if err != nil {
			r.progress(fmt.Sprintf("rule count: %v", err))
			continue
		}
		r.out = append(r.out, metrics.Summarize(fmt.Sprintf("rules/%s/services=%d/count", d.Name, n), "rules", metrics.Lower, []float64{float64(c)}))
	}
}
