package simbench

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

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
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("%s: %v: %w", d.Name, argv, err)
	}
	// Counted as the tool writes (320k lines at 10k services), not kept.
	n, countErr := countRuleLines(d.Mode, stdout)
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("%s: %v: %w", d.Name, argv, err)
	}
	return n, countErr
}

// countRuleLines counts the rules in a backend tool's listing: the "-A"
// lines of iptables-save; for nft, every line that is a rule or an element
// of a map or set continued on its own line (not a table, chain, set or map
// header, property or closing brace).
func countRuleLines(mode cluster.KubeProxyMode, r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case mode != cluster.KubeProxyNFTables && strings.HasPrefix(line, "-A "):
			n++
		case mode == cluster.KubeProxyNFTables && line != "" && line != "}" && !strings.HasSuffix(line, "{") &&
			!strings.HasPrefix(line, "type ") && !strings.HasPrefix(line, "flags ") && !strings.HasPrefix(line, "elements ") && !strings.HasPrefix(line, "comment "):
			n++
		}
	}
	return n, sc.Err()
}

// recordRules adds each kube-proxy's rule count at n services. The counts
// are read at once, one tool per node: nothing is timed meanwhile, and at
// 10k services each read takes a minute or more on this shared VM.
func (r *runner) recordRules(n int) {
	start := time.Now()
	type count struct {
		rules int
		took  time.Duration
		err   error
	}
	counts := make([]count, len(datapaths))
	var wg sync.WaitGroup
	for i, d := range datapaths {
		if d.Mode == "" || r.lagging[d.Name] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			begin := time.Now()
			c, err := countRules(d)
			counts[i] = count{c, time.Since(begin), err}
		}()
	}
	wg.Wait()
	var read []string
	for i, d := range datapaths {
		if d.Mode == "" || r.lagging[d.Name] {
			continue
		}
		c := counts[i]
		if c.err != nil {
			r.progress(fmt.Sprintf("rule count: %v", c.err))
			continue
		}
		read = append(read, fmt.Sprintf("%s %d in %.1f s", d.Name, c.rules, c.took.Seconds()))
		r.out = append(r.out, metrics.Summarize(fmt.Sprintf("rules/%s/services=%d/count", d.Name, n), "rules", metrics.Lower, []float64{float64(c.rules)}))
	}
	r.progress(fmt.Sprintf("%d services: rule counts read in %.1f s (%s)", n, time.Since(start).Seconds(), strings.Join(read, ", ")))
}
