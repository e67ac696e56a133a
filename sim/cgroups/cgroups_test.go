package cgroups

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kestrelnet/kestrel/datapath"
)

// A process started with Place runs in the pod's cgroup from its start, and
// Remove kills it and removes the cgroups, deepest first.
func TestPlaceAndRemove(t *testing.T) {
	mount, err := datapath.Cgroup2Mount()
	if err != nil {
		if os.Getenv("KESTREL_REQUIRE_PRIVILEGED") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	name := fmt.Sprintf("cgtest-%d", os.Getpid())
	pod, err := PodDir(name, "node-1", "0123-uid")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Remove(filepath.Join(mount, "kestrel", name)) })
	if err := Ensure(pod); err != nil {
		t.Fatal(err)
	}
	if found, err := FindPod(name, "0123-uid"); err != nil || found != pod {
		t.Fatalf("FindPod: %q, %v; want %q", found, err, pod)
	}
	if _, err := FindPod(name, "other"); err == nil {
		t.Fatal("FindPod found a cgroup for a pod that has none")
	}
	cmd := exec.Command("sleep", "60")
	done, err := Place(cmd, pod)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	rel := strings.TrimPrefix(pod, mount)
	if !strings.Contains(string(raw), "0::"+rel+"\n") {
		t.Fatalf("the process's cgroups are %q, want the v2 one %s", raw, rel)
	}
	cluster, _ := ClusterDir(name)
	if err := Remove(cluster); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err == nil {
		t.Fatal("the process in the removed cgroup exited normally; want it killed")
	}
	if _, err := os.Stat(cluster); !os.IsNotExist(err) {
		t.Fatalf("cluster cgroup still there: %v", err)
	}
	if err := Remove(cluster); err != nil {
		t.Fatalf("removing an absent cgroup: %v", err)
	}
}
