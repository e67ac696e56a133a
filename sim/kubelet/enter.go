package kubelet

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/kestrelnet/kestrel/sim/network"
)

// EnterNodeNetns makes the current process run in the node's namespace. A
// Go process cannot move all its threads, so it re-executes itself through
// nsenter, which keeps the pid (pid files stay right) and, unlike
// `ip netns exec`, keeps the mount namespace: the pod namespaces the kubelet
// mounts under /var/run/netns must be visible to the rest of the host, and
// /sys/fs/bpf must stay the host's. It returns nil when already there.
func EnterNodeNetns(netnsName string) error {
	same, err := sameNamespace("/proc/self/ns/net", network.NetnsPath(netnsName))
	if err != nil {
		return fmt.Errorf("node netns %s: %w (is the sim network up?)", netnsName, err)
	}
	if same {
		return nil
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return fmt.Errorf("entering netns %s needs nsenter (util-linux): %w", netnsName, err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	argv := append([]string{"nsenter", "--net=" + network.NetnsPath(netnsName), "--", self}, os.Args[1:]...)
	return syscall.Exec(nsenter, argv, os.Environ())
}

// CheckMountNamespace refuses to run in a private mount namespace, which is
// what `ip netns exec` gives: pod namespaces mounted there would be empty
// files to everyone else.
func CheckMountNamespace() error {
	same, err := sameNamespace("/proc/self/ns/mnt", "/proc/1/ns/mnt")
	if err != nil || same {
		return nil // unknowable (e.g. no access to pid 1): do not block
	}
	return fmt.Errorf("the kubelet runs in a private mount namespace (started by `ip netns exec`?): " +
		"pod namespaces it creates would be invisible outside it; start it from the root namespaces, " +
		"it enters the node's network namespace itself")
}

func sameNamespace(a, b string) (bool, error) {
	var sa, sb syscall.Stat_t
	if err := syscall.Stat(a, &sa); err != nil {
		return false, err
	}
	if err := syscall.Stat(b, &sb); err != nil {
		return false, err
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}
