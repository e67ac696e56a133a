package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/kestrelnet/kestrel/sim/controlplane"
	"github.com/kestrelnet/kestrel/sim/network"
)

// KubeProxyMode is how the real kube-proxy runs on a node that has it:
// iptables mode with the legacy or the nf_tables iptables backend, or
// nftables mode.
type KubeProxyMode string

const (
	KubeProxyIPTablesLegacy KubeProxyMode = "iptables-legacy"
	KubeProxyIPTablesNFT    KubeProxyMode = "iptables-nft"
	KubeProxyNFTables       KubeProxyMode = "nftables"
)

// KubeProxyModes lists the modes, in the order reports show them.
var KubeProxyModes = []KubeProxyMode{KubeProxyIPTablesLegacy, KubeProxyIPTablesNFT, KubeProxyNFTables}

// KubeProxyMetricsPort is where a node's kube-proxy serves its metrics, on
// the node's underlay address (reachable from the root namespace).
const KubeProxyMetricsPort = 10249

// ParseKubeProxyNodes reads "2=iptables-legacy,3=nftables": node index to mode.
func ParseKubeProxyNodes(s string) (map[int]KubeProxyMode, error) {
	out := map[int]KubeProxyMode{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		idx, mode, ok := strings.Cut(part, "=")
		i, err := strconv.Atoi(idx)
		if !ok || err != nil || i < 1 {
			return nil, fmt.Errorf("kube-proxy node %q: want INDEX=MODE, e.g. 2=nftables", part)
		}
		m := KubeProxyMode(mode)
		if err := m.validate(); err != nil {
			return nil, err
		}
		if _, dup := out[i]; dup {
			return nil, fmt.Errorf("kube-proxy node %d is given twice", i)
		}
		out[i] = m
	}
	return out, nil
}

func (m KubeProxyMode) validate() error {
	for _, k := range KubeProxyModes {
		if m == k {
			return nil
		}
	}
	return fmt.Errorf("kube-proxy mode %q: want one of %v", string(m), KubeProxyModes)
}

// KubeProxyProcess is the name a node's kube-proxy runs under.
func KubeProxyProcess(node string) string { return node + "-kube-proxy" }

// KubeProxyMetricsURL is where node i's kube-proxy serves its metrics.
func KubeProxyMetricsURL(i int) string {
	return fmt.Sprintf("http://%s:%d/metrics", network.NodeIP(i), KubeProxyMetricsPort)
}

// startKubeProxy runs the real kube-proxy (built by `make deps`) in node i's
// namespace. Its flags are what the trial on this machine needed: the
// global conntrack table size is not writable from a network namespace
// (--conntrack-max-per-core=0 leaves it), and the iptables backend is the one
// of the iptables binaries first on its PATH.
func startKubeProxy(o Options, state string, i int, mode KubeProxyMode) error {
	node := network.NodeName(i)
	nsenter, err := lookNsenter()
	if err != nil {
		return err
	}
	proxyMode := "iptables"
	var env []string
	switch mode {
	case KubeProxyNFTables:
		proxyMode = "nftables"
	case KubeProxyIPTablesLegacy, KubeProxyIPTablesNFT:
		dir, err := iptablesBackendDir(state, mode)
		if err != nil {
			return fmt.Errorf("%s kube-proxy: %w", node, err)
		}
		env = append(env, "PATH="+dir+":"+os.Getenv("PATH"))
	}
	var clusterCIDRs []string
	for _, c := range network.PodSupernets() {
		clusterCIDRs = append(clusterCIDRs, c.String())
	}
	p := controlplane.ProcessSpec{Name: KubeProxyProcess(node), StateDir: state, Path: nsenter, Env: env, Args: []string{
		"--net=" + network.NetnsPath(network.NodeNetns(o.Name, i)), "--",
		filepath.Join(o.K8sBinDir, "kube-proxy"),
		"--kubeconfig", filepath.Join(state, "kubeconfig"),
		"--hostname-override", node,
		"--proxy-mode", proxyMode,
		"--cluster-cidr", strings.Join(clusterCIDRs, ","),
		"--conntrack-max-per-core=0",
		"--metrics-bind-address", fmt.Sprintf("%s:%d", network.NodeIP(i), KubeProxyMetricsPort),
		"--healthz-bind-address", fmt.Sprintf("%s:10256", network.NodeIP(i)),
	}}
	if _, err := controlplane.StartProcess(p); err != nil {
		return fmt.Errorf("%s kube-proxy: %w", node, err)
	}
	return nil
}

// iptablesBackendDir makes a directory whose iptables* and ip6tables*
// commands are the given backend's, to put first on kube-proxy's PATH.
func iptablesBackendDir(state string, mode KubeProxyMode) (string, error) {
	multi := map[KubeProxyMode]string{KubeProxyIPTablesLegacy: "xtables-legacy-multi", KubeProxyIPTablesNFT: "xtables-nft-multi"}[mode]
	var target string
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		if _, err := os.Stat(filepath.Join(d, multi)); err == nil {
			target = filepath.Join(d, multi)
			break
		}
	}
	if target == "" {
		return "", fmt.Errorf("%s not found (install iptables)", multi)
	}
	dir := filepath.Join(state, "kube-proxy", string(mode))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, fam := range []string{"iptables", "ip6tables"} {
		for _, suffix := range []string{"", "-save", "-restore"} {
			link := filepath.Join(dir, fam+suffix)
			os.Remove(link)
			if err := os.Symlink(target, link); err != nil {
				return "", err
			}
		}
	}
	return dir, nil
}

// kubeProxyNodes lists the node indexes of a KubeProxy map, sorted.
func kubeProxyNodes(m map[int]KubeProxyMode) []int {
	var out []int
	for i := range m {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

// KubeProxyState is what a kube-proxy's metrics say about its rules.
type KubeProxyState struct {
	// LastSync is kubeproxy_sync_proxy_rules_last_timestamp_seconds: when
	// its rules were last written (0: never).
	LastSync float64
	// Pending counts the service and endpoint changes it has seen and not
	// yet written.
	Pending float64
	// Syncs counts the rule syncs it has done.
	Syncs float64
}

// ReadKubeProxyState reads node i's kube-proxy metrics.
func ReadKubeProxyState(ctx context.Context, i int) (KubeProxyState, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, KubeProxyMetricsURL(i), nil)
	if err != nil {
		return KubeProxyState{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return KubeProxyState{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return KubeProxyState{}, fmt.Errorf("%s: %s", KubeProxyMetricsURL(i), resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return KubeProxyState{}, err
	}
	m := metricSums(string(body))
	return KubeProxyState{
		LastSync: m["kubeproxy_sync_proxy_rules_last_timestamp_seconds"],
		Pending:  m["kubeproxy_sync_proxy_rules_service_changes_pending"] + m["kubeproxy_sync_proxy_rules_endpoint_changes_pending"],
		Syncs:    m["kubeproxy_sync_proxy_rules_duration_seconds_count"],
	}, nil
}

// metricSums reads Prometheus text exposition: each metric's value summed
// over its label sets.
func metricSums(text string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		name := fields[0]
		if j := strings.IndexByte(name, '{'); j >= 0 {
			// Label values may hold spaces: the value is after the '}'.
			name = name[:j]
			if k := strings.LastIndexByte(line, '}'); k >= 0 {
				fields = strings.Fields(line[k+1:])
			}
		} else {
			fields = fields[1:]
		}
		if len(fields) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(fields[0], 64); err == nil {
			out[name] += v
		}
	}
	return out
}
