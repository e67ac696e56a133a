// Package cgroups gives sim pods cgroups of their own, as a container runtime
// does: <cgroup v2 mount>/kestrel/NAME/node-i/pod-<uid>. Each node's agent
// attaches its socket programs (socket-level load balancing) to its node's
// directory, so they apply to every process of that node's pods, and to
// nothing else on the host. The cgroup v2 mount is found in
// /proc/self/mountinfo (a hybrid machine has it at /sys/fs/cgroup/unified).
package cgroups

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kestrelnet/kestrel/datapath"
)

// ClusterDir is cluster name's cgroup directory.
func ClusterDir(name string) (string, error) {
	mount, err := datapath.Cgroup2Mount()
	if err != nil {
		return "", err
	}
	return filepath.Join(mount, "kestrel", name), nil
}

// NodeDir is node's directory in cluster name: the agent's --cgroup-root.
func NodeDir(name, node string) (string, error) {
	dir, err := ClusterDir(name)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, node), nil
}

// HostDir is the cgroup of node's own processes that socket LB should
// serve (the sim runner's probes from the node): below the node's, beside
// its pods'.
func HostDir(name, node string) (string, error) {
	dir, err := NodeDir(name, node)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "host"), nil
}

// PodDir is the cgroup of the pod with this UID on node.
func PodDir(name, node, uid string) (string, error) {
	dir, err := NodeDir(name, node)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "pod-"+uid), nil
}

// FindPod returns the cgroup of the pod with this UID on whichever node
// of cluster name it runs, or an error saying there is none.
func FindPod(name, uid string) (string, error) {
	dir, err := ClusterDir(name)
	if err != nil {
		return "", err
	}
	found, err := filepath.Glob(filepath.Join(dir, "*", "pod-"+uid))
	if err != nil || len(found) == 0 {
		return "", fmt.Errorf("pod %s has no cgroup under %s", uid, dir)
	}
	return found[0], nil
}

// Ensure makes dir and its parents (each a cgroup).
func Ensure(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	return nil
}

// Remove kills every process in dir and below (cgroup.kill), waits for them
// to leave, and removes the cgroups, deepest first. An absent dir is no
// error.
func Remove(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("kill the processes of cgroup %s: %w", dir, err)
	}
	slices.Reverse(dirs)
	var errs []error
	for _, d := range dirs {
		errs = append(errs, removeOne(d))
	}
	return errors.Join(errs...)
}

// removeOne removes an empty cgroup, waiting a little for killed processes
// to leave it (rmdir fails with EBUSY while any remain).
func removeOne(dir string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			return fmt.Errorf("remove cgroup %s: %w (processes still in it: %s)", dir, err, strings.Fields(string(procs)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Place makes cmd start inside cgroup dir (clone3's CLONE_INTO_CGROUP:
// the process is there before it runs a single instruction, so nothing it
// does escapes the cgroup's programs). The returned function releases the
// directory's descriptor once cmd has started.
func Place(cmd *exec.Cmd, dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = int(f.Fd())
	return func() { f.Close() }, nil
}
