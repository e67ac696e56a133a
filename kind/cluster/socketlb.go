package cluster

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// NodeCgroupRoot is the directory, in a node, of the cgroup v2 hierarchy as the
// node sees it: the root of its cgroup namespace, which holds every process of
// the node (kubelet, containerd, and the pods below kubelet.slice). On a cgroup
// v1 hybrid host (as the development machines') it is /sys/fs/cgroup/unified,
// on a cgroup v2 host /sys/fs/cgroup. The agents attach socket LB there. Empty
// when the node has no cgroup v2 hierarchy (socket LB stays off).
func NodeCgroupRoot(node string) (string, error) {
	out, err := exec.Command("docker", "inspect", "--format", "{{.State.Pid}}", node).Output()
	if err != nil {
		return "", fmt.Errorf("docker inspect %s: %w", node, err)
	}
	root := filepath.Join("/proc", strings.TrimSpace(string(out)), "root")
	for _, dir := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		var st unix.Statfs_t
		if err := unix.Statfs(filepath.Join(root, dir), &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return dir, nil
		}
	}
	return "", nil
}
