// Package preflight finds what kube-proxy leaves on a node: its iptables
// chains (nft and legacy backends, IPv4 and IPv6) and its nftables tables.
// Kestrel's kube-proxy replacement must not run beside them: their rules
// would translate or drop service traffic before Kestrel's programs see it.
package preflight

import (
	"bufio"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
)

// Finding is one trace of kube-proxy.
type Finding struct {
	Backend string // iptables-nft, iptables-legacy, ip6tables-nft, ip6tables-legacy, nftables
	What    string // e.g. "chain KUBE-SERVICES in table nat"
}

func (f Finding) String() string { return f.Backend + ": " + f.What }

// kubeProxyChains are the fixed chains kube-proxy's iptables mode creates;
// per-service chains carry these prefixes. KUBE-FIREWALL and
// KUBE-KUBELET-CANARY belong to the kubelet and are not kube-proxy's.
var (
	kubeProxyChains = map[string]bool{
		"KUBE-SERVICES": true, "KUBE-NODEPORTS": true, "KUBE-POSTROUTING": true, "KUBE-MARK-MASQ": true,
		"KUBE-FORWARD": true, "KUBE-PROXY-FIREWALL": true, "KUBE-EXTERNAL-SERVICES": true, "KUBE-PROXY-CANARY": true,
		"KUBE-MARK-DROP": true, "KUBE-LOAD-BALANCER": true,
	}
	kubeProxyChainPrefixes = []string{"KUBE-SVC-", "KUBE-SVL-", "KUBE-SEP-", "KUBE-EXT-", "KUBE-FW-", "KUBE-XLB-"}
)

func isKubeProxyChain(name string) bool {
	if kubeProxyChains[name] {
		return true
	}
	for _, p := range kubeProxyChainPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// FromIptablesSave reads iptables-save output: each kube-proxy chain declared
// in a table is a finding (per-service chains are counted, not listed).
func FromIptablesSave(backend, text string) []Finding {
	var out []Finding
	table := ""
	perService := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"):
			chain, _, _ := strings.Cut(line[1:], " ")
			if !isKubeProxyChain(chain) {
				continue
			}
			if kubeProxyChains[chain] {
				out = append(out, Finding{backend, fmt.Sprintf("chain %s in table %s", chain, table)})
			} else {
				perService[table]++
			}
		}
	}
	tables := make([]string, 0, len(perService))
	for t := range perService {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		out = append(out, Finding{backend, fmt.Sprintf("%d per-service chains (KUBE-SVC-*, KUBE-SEP-*, ...) in table %s", perService[t], t)})
	}
	return out
}

// FromNftTables reads `nft list tables`: kube-proxy's nftables mode owns
// the tables named kube-proxy (ip and ip6).
func FromNftTables(text string) []Finding {
	var out []Finding
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "table" && f[2] == "kube-proxy" {
			out = append(out, Finding{"nftables", fmt.Sprintf("table %s kube-proxy", f[1])})
		}
	}
	return out
}

// Runner runs a command and returns its standard output.
type Runner func(name string, args ...string) (string, error)

// Exec runs commands on this host (in the caller's network namespace).
func Exec(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return string(out), err
}

// InNetns runs commands inside the named network namespace (ip netns exec),
// such as a sim node's.
func InNetns(name string) Runner {
	return func(cmd string, args ...string) (string, error) {
		return Exec("ip", append([]string{"netns", "exec", name, cmd}, args...)...)
	}
}

// Scan looks with every tool this host has. A tool that is missing is
// skipped (its backend cannot hold rules then); a tool that fails is an error.
func Scan(run Runner, have func(string) bool) ([]Finding, []error) {
	var out []Finding
	var errs []error
	for _, t := range []struct{ backend, cmd string }{
		{"iptables-nft", "iptables-nft-save"},
		{"iptables-legacy", "iptables-legacy-save"},
		{"ip6tables-nft", "ip6tables-nft-save"},
		{"ip6tables-legacy", "ip6tables-legacy-save"},
	} {
		if !have(t.cmd) {
			continue
		}
		text, err := run(t.cmd)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.cmd, err))
			continue
		}
		out = append(out, FromIptablesSave(t.backend, text)...)
	}
	if have("nft") {
		text, err := run("nft", "list", "tables")
		if err != nil {
			errs = append(errs, fmt.Errorf("nft list tables: %w", err))
		} else {
			out = append(out, FromNftTables(text)...)
		}
	}
	return out, errs
}

// Have reports whether a command is on PATH.
func Have(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}
