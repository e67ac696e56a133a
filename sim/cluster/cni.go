package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/kestrelnet/kestrel/sim/kubelet"
)

// writeConflist writes the node's CNI configuration (sim/README.md, "The CNI
// plugin").
func writeConflist(nodeDir, agentSocket string, podCIDRs []string, gateway string) error {
	conf := map[string]any{
		"cniVersion": "1.1.0",
		"name":       "kestrel",
		"plugins": []map[string]any{{
			"type":        "kestrel-cni",
			"agentSocket": agentSocket,
			"podCIDRs":    podCIDRs,
			"gateway":     gateway,
			"ipamDir":     filepath.Join(nodeDir, "ipam"),
		}},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Join(nodeDir, "cni")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, kubelet.ConfListName), b, 0o644)
}
