package preflight

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kestrelnet/kestrel/agent/corpus"
)

func TestKubeProxysOwnIptablesRulesAreFound(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(corpus.Dir(t), "kube-proxy-iptables", "overall-iptables-rules.json"))
	if err != nil {
		t.Fatalf("the corpus of kube-proxy's rules: %v", err)
	}
	var corpus struct {
		ExpectedIptablesSave []string `json:"expectedIptablesSave"`
	}
	if err := json.Unmarshal(raw, &corpus); err != nil {
		t.Fatal(err)
	}
	got := FromIptablesSave("iptables-nft", strings.Join(corpus.ExpectedIptablesSave, "\n"))
	text := ""
	for _, f := range got {
		text += f.String() + "\n"
	}
	for _, want := range []string{
		"iptables-nft: chain KUBE-SERVICES in table nat",
		"iptables-nft: chain KUBE-NODEPORTS in table filter",
		"iptables-nft: chain KUBE-POSTROUTING in table nat",
		"per-service chains (KUBE-SVC-*, KUBE-SEP-*, ...) in table nat",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("findings lack %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "KUBE-FIREWALL ") {
		t.Errorf("the kubelet's KUBE-FIREWALL was taken for kube-proxy's:\n%s", text)
	}
}

func TestANodeWithoutKubeProxyHasNoFindings(t *testing.T) {
	clean := "*filter\n:INPUT ACCEPT [0:0]\n:KUBE-FIREWALL - [0:0]\n:KUBE-KUBELET-CANARY - [0:0]\nCOMMIT\n"
	if got := FromIptablesSave("iptables-nft", clean); len(got) != 0 {
		t.Fatalf("findings on a node without kube-proxy: %v", got)
	}
	if got := FromNftTables("table inet filter\ntable ip nat\n"); len(got) != 0 {
		t.Fatalf("findings in unrelated nftables tables: %v", got)
	}
}

func TestKubeProxysNftablesTablesAreFound(t *testing.T) {
	got := FromNftTables("table ip kube-proxy\ntable ip6 kube-proxy\ntable inet filter\n")
	if len(got) != 2 || got[0].What != "table ip kube-proxy" || got[1].What != "table ip6 kube-proxy" {
		t.Fatalf("findings %v", got)
	}
}

func TestScanSkipsMissingToolsAndReportsFailingOnes(t *testing.T) {
	run := func(name string, args ...string) (string, error) {
		if name == "nft" {
			return "", os.ErrPermission
		}
		return "*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n", nil
	}
	have := func(name string) bool { return name == "iptables-nft-save" || name == "nft" }
	got, errs := Scan(run, have)
	if len(got) != 1 || got[0].Backend != "iptables-nft" || len(errs) != 1 || !strings.Contains(errs[0].Error(), "nft list tables") {
		t.Fatalf("findings %v, errors %v", got, errs)
	}
}
