//go:build e2e

package cluster

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kestrelnet/kestrel/install"
	"github.com/kestrelnet/kestrel/kind/image"
	"github.com/kestrelnet/kestrel/sim/controlplane"
)

// TestUpUninstallDown brings a 2-node kind cluster up (Kestrel as CNI, CoreDNS
// answering), uninstalls Kestrel and checks that every node is clean (no pins,
// no CNI configuration or plugin, no node routes), then takes the cluster down
// and checks that no container of it is left. Needs docker (make deps).
func TestUpUninstallDown(t *testing.T) {
	if err := exec.Command("docker", "info").Run(); err != nil {
		if os.Getenv("KESTREL_REQUIRE_PRIVILEGED") == "1" {
			t.Fatalf("docker does not answer: %v", err)
		}
		t.Skipf("docker does not answer (%v): run `make deps`", err)
	}
	const name = "uninstall"
	ctx := context.Background()
	o, err := image.DefaultOptions(controlplane.KubernetesVersion)
	if err != nil {
		t.Fatal(err)
	}
	_ = Down(name)
	start := time.Now()
	info, err := Up(ctx, Options{Name: name, Workers: 1, Images: o, Version: controlplane.KubernetesVersion, Wait: 5 * time.Minute})
	defer func() {
		if err := Down(name); err != nil {
			t.Errorf("down: %v", err)
		}
		out, _ := exec.Command("docker", "ps", "-a", "--filter", "label=io.x-k8s.kind.cluster="+name, "--format", "{{.Names}}").Output()
		if s := strings.TrimSpace(string(out)); s != "" {
			t.Errorf("containers left after down: %s", s)
		}
		if left, err := OutsideContainers(name); err != nil || len(left) > 0 {
			t.Errorf("outside host containers left after down: %v (%v)", left, err)
		}
	}()
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	t.Logf("up in %s (images %s)", time.Since(start).Round(time.Second/10), info.Images.Took.Round(time.Second/10))
	if len(info.Nodes) != 2 {
		t.Fatalf("nodes %v, want 2", info.Nodes)
	}
	for _, n := range info.Nodes {
		if out, err := exec.Command("docker", "exec", n, "ls", "/sys/fs/bpf/kestrel/maps", "/etc/cni/net.d/05-kestrel.conflist", "/opt/cni/bin/kestrel-cni").CombinedOutput(); err != nil {
			t.Fatalf("%s before uninstall: Kestrel's state missing: %v\n%s", n, err, out)
		}
	}
	cs, dyn, err := clients(info.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := install.Uninstall(ctx, cs, dyn, install.Defaults(), false, 3*time.Minute); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	for _, n := range info.Nodes {
		for _, path := range []string{"/sys/fs/bpf/kestrel", "/etc/cni/net.d/05-kestrel.conflist", "/opt/cni/bin/kestrel-cni", "/var/lib/kestrel/ipam"} {
			if err := exec.Command("docker", "exec", n, "test", "-e", path).Run(); err == nil {
				t.Errorf("%s: %s still there after uninstall", n, path)
			}
		}
		out, err := exec.Command("docker", "exec", n, "ip", "route", "show", "proto", "75").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("%s: node routes after uninstall: %q (%v)", n, out, err)
		}
		// No TC program is left on any device (the pods' veths are gone with their
		// programs; the node's own devices never had any without --devices).
		out, _ = exec.Command("docker", "exec", n, "sh", "-c", "ls /sys/fs/bpf 2>&1").CombinedOutput()
		if strings.Contains(string(out), "kestrel") {
			t.Errorf("%s: /sys/fs/bpf still has %s", n, out)
		}
	}
}
