package cluster

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

const bpffsRoot = "/sys/fs/bpf"

// ensureBPFFS mounts the bpf filesystem at /sys/fs/bpf when it is not there:
// the agents pin maps and links under it so they outlive agent restarts.
func ensureBPFFS() error {
	var st unix.Statfs_t
	if err := unix.Statfs(bpffsRoot, &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := os.MkdirAll(bpffsRoot, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("bpf", bpffsRoot, "bpf", 0, ""); err != nil {
		return fmt.Errorf("mount bpffs at %s: %w", bpffsRoot, err)
	}
	return nil
}

// pinDir is where one node's agent pins its maps and links.
func pinDir(name, node string) string {
	return bpffsRoot + "/kestrel/" + name + "/" + node
}
