package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Do runs fn with the calling goroutine's thread inside the named namespace.
// Sockets and sysctl writes made by fn belong to that namespace. If the thread
// cannot be put back, it stays locked so the runtime retires it instead of
// handing a thread in the wrong namespace to other goroutines.
func Do(netnsName string, fn func() error) error {
	open := netns.GetFromName
	if filepath.IsAbs(netnsName) {
		// A path, as /proc/PID/ns/net (kind's pods are no named namespaces).
		open = netns.GetFromPath
	}
	target, err := open(netnsName)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", netnsName, err)
	}
	defer target.Close()
	return DoHandle(target, fn)
}

// DoHandle is Do for an open namespace handle.
func DoHandle(target netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns: %w", err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		return errors.Join(fnErr, fmt.Errorf("return to original netns: %w", err))
	}
	runtime.UnlockOSThread()
	return fnErr
}

// EnsureNetns creates the named namespace unless it exists. netns.NewNamed
// moves the thread into the new namespace, so it runs in Do-like isolation.
func EnsureNetns(netnsName string) error {
	if h, err := netns.GetFromName(netnsName); err == nil {
		h.Close()
		return nil
	}
	if err := ensureNetnsDir(); err != nil {
		return err
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	created, err := netns.NewNamed(netnsName)
	if err != nil {
		// NewNamed may have switched before failing; go back before unlocking.
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		return fmt.Errorf("create netns %s: %w", netnsName, err)
	}
	created.Close()
	if err := netns.Set(orig); err != nil {
		return fmt.Errorf("return from new netns %s: %w", netnsName, err)
	}
	runtime.UnlockOSThread()
	return nil
}

// netnsDir is where named namespaces are mounted (iproute2's NETNS_RUN_DIR).
const netnsDir = "/var/run/netns"

// ensureNetnsDir makes netnsDir a shared mount point of its own before a
// namespace is mounted in it, as iproute2 does before its first `ip netns
// add`. Otherwise the first `ip netns add` run by anyone while the cluster is
// up binds the directory over itself: the sim's namespaces then show through
// copies, and deleting one removes the copy but cannot remove the name
// (EBUSY), since the original mount stays beneath the bind.
func ensureNetnsDir() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return err
	}
	for bound := false; ; bound = true {
		err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return nil
		}
		// EINVAL: not a mount point yet.
		if !errors.Is(err, unix.EINVAL) || bound {
			return fmt.Errorf("make %s a shared mount: %w", netnsDir, err)
		}
		if err := unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s onto itself: %w", netnsDir, err)
		}
	}
}

// DeleteNetns removes a named namespace; an absent one is not an error. A
// name that is not mounted (its namespace was mounted in a mount namespace
// that is gone) is just a file, and is removed as such.
func DeleteNetns(netnsName string) error {
	path := NetnsPath(netnsName)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete netns %s: unmount: %w", netnsName, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete netns %s: %w", netnsName, err)
	}
	return nil
}

// ListNetns returns the named namespaces (the entries of /var/run/netns).
func ListNetns() ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// writeSysctl writes a sysctl of the calling thread's network namespace.
func writeSysctl(key, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}
