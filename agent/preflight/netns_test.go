package preflight

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// A real node namespace: kube-proxy's chain, written with the host's own
// iptables, is found there and nowhere else.
func TestScanFindsKubeProxyChainsInANodesNamespace(t *testing.T) {
	if !Have("iptables-nft-save") {
		t.Skip("iptables (nft backend) is not installed")
	}
	name := fmt.Sprintf("kst-preflight-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", name).Run() })
	run := InNetns(name)

	got, errs := Scan(run, Have)
	if len(errs) != 0 || len(got) != 0 {
		t.Fatalf("a fresh namespace: findings %v, errors %v", got, errs)
	}
	for _, args := range [][]string{{"-t", "nat", "-N", "KUBE-SERVICES"}, {"-t", "nat", "-N", "KUBE-SVC-XPGD46QRK7WJZT7O"}} {
		if _, err := run("iptables-nft", args...); err != nil {
			t.Fatalf("iptables %v: %v", args, err)
		}
	}
	got, errs = Scan(run, Have)
	text := fmt.Sprint(got)
	if len(errs) != 0 || !strings.Contains(text, "iptables-nft: chain KUBE-SERVICES in table nat") || !strings.Contains(text, "1 per-service chains") {
		t.Fatalf("findings %v, errors %v", got, errs)
	}
}
