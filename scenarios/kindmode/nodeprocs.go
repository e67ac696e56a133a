package kindmode

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kestrelnet/kestrel/datapath"
	kindcluster "github.com/kestrelnet/kestrel/kind/cluster"
)

// NodeProcess: a probe from the scenario's i-th node runs as a process (the
// kestrel binary's `sim connect`) in the node's own cgroup, the root of the
// node's cgroup v2 namespace, seen from this machine under its cgroup v2
// mount. The agents attach socket LB there (kind/cluster/socketlb.go), so the
// probe is served as the node's own programs are. bin is empty when the
// cluster runs without socket LB (no cgroup v2 hierarchy in the nodes) or no
// kestrel binary is known: the probe then runs in the runner.
func (b *Backend) NodeProcess(i int) (bin, cgroup string, err error) {
	if b.KestrelBin == "" || i < 1 || i > len(b.NodeNames()) {
		return "", "", nil
	}
	node := b.NodeNames()[i-1]
	b.mu.Lock()
	cg, ok := b.nodeCgroups[node]
	b.mu.Unlock()
	if ok {
		return b.KestrelBin, cg, nil
	}
	if root, err := kindcluster.NodeCgroupRoot(node); err != nil || root == "" {
		return "", "", err
	}
	pid, err := b.containerPID(node)
	if err != nil {
		return "", "", err
	}
	initCg, err := cgroupOf(pid)
	if err != nil {
		return "", "", fmt.Errorf("node %s: %w", node, err)
	}
	// The node's init is in init.scope, a child of the node's root.
	cg = filepath.Dir(initCg)
	b.mu.Lock()
	b.nodeCgroups[node] = cg
	b.mu.Unlock()
	return b.KestrelBin, cg, nil
}

// kestrelBin is this program when it is the kestrel CLI (`kestrel scenario
// run`), whose `sim connect` a node probe runs.
func kestrelBin() string {
	exe, err := os.Executable()
	if err != nil || filepath.Base(exe) != "kestrel" {
		return ""
	}
	return exe
}

// PodCgroup is the cgroup v2 directory, on this machine, of a process of the
// pod with this UID: a process placed there connects as the pod's own program
// does, with the socket LB the agent attached above it (at the node's root).
func (b *Backend) PodCgroup(uid string) (string, error) {
	if _, err := b.PodNetns(uid); err != nil {
		return "", err
	}
	b.mu.Lock()
	pid := b.podPIDs[uid]
	b.mu.Unlock()
	cg, err := cgroupOf(pid)
	if err != nil {
		return "", fmt.Errorf("pod %s: %w", uid, err)
	}
	return cg, nil
}

// cgroupOf is process pid's cgroup v2 directory under this machine's cgroup v2
// mount (/proc/PID/cgroup names it from this process's cgroup namespace, the
// host's).
func cgroupOf(pid int) (string, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	var path string
	for _, l := range strings.Split(string(raw), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			path = p
		}
	}
	if path == "" {
		return "", fmt.Errorf("process %d is in no cgroup v2 directory (/proc/%d/cgroup)", pid, pid)
	}
	mount, err := datapath.Cgroup2Mount()
	if err != nil {
		return "", err
	}
	return filepath.Join(mount, path), nil
}
