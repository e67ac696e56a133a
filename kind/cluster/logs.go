package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	kindlog "sigs.k8s.io/kind/pkg/log"

	"github.com/kestrelnet/kestrel/agent/api"
)

// CollectLogs writes what a failed run needs into dir, as `kind export logs` and
// `cilium sysdump` do: kind's export (every node's journal, kubelet and containerd
// logs, every pod's logs, the agents' included), and per node the agent's own
// status and services, its pins, routes and links.
func CollectLogs(ctx context.Context, name, dir string) error {
	p := kindcluster.NewProvider(kindcluster.ProviderWithDocker(), kindcluster.ProviderWithLogger(kindlog.NoopLogger{}))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	if err := p.CollectLogs(name, dir); err != nil {
		errs = append(errs, fmt.Errorf("kind export logs: %w", err))
	}
	nodes, err := p.ListInternalNodes(name)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		nd := filepath.Join(dir, n.String(), "kestrel")
		if err := os.MkdirAll(nd, 0o755); err != nil {
			return err
		}
		for file, cmd := range map[string][]string{
			"routes.txt": {"ip", "-d", "route", "show", "table", "all"},
			"links.txt":  {"ip", "-d", "link"},
			"pins.txt":   {"find", "/sys/fs/bpf"},
			"cni.txt":    {"sh", "-c", "ls -l /etc/cni/net.d /opt/cni/bin; cat /etc/cni/net.d/*"},
		} {
			out, err := exec.CommandContext(ctx, "docker", append([]string{"exec", n.String()}, cmd...)...).CombinedOutput()
			if err != nil {
				out = append(out, []byte("\nerror: "+err.Error()+"\n")...)
			}
			if err := os.WriteFile(filepath.Join(nd, file), out, 0o644); err != nil {
				errs = append(errs, err)
			}
		}
		pid, err := exec.CommandContext(ctx, "docker", "inspect", "--format", "{{.State.Pid}}", n.String()).Output()
		if err != nil {
			continue
		}
		c := api.NewClient(fmt.Sprintf("/proc/%s/root/run/kestrel/agent.sock", string(pid[:len(pid)-1])))
		if st, err := c.Status(ctx); err == nil {
			writeJSON(filepath.Join(nd, "agent-status.json"), st)
		}
		if sv, err := c.Services(ctx); err == nil {
			writeJSON(filepath.Join(nd, "agent-services.json"), sv)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("collect logs: %v", errs)
	}
	return nil
}

func writeJSON(path string, v any) {
	if b, err := json.MarshalIndent(v, "", "  "); err == nil {
		_ = os.WriteFile(path, b, 0o644)
	}
}
