package network

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// InNetns reports whether process pid runs in the named namespace; a pid
// that is gone, or was recycled by a process elsewhere, does not.
func InNetns(pid int, netnsName string) bool {
	var a, b syscall.Stat_t
	if syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &a) != nil {
		return false
	}
	if syscall.Stat(NetnsPath(netnsName), &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// ProcessesIn lists the pids of processes whose network namespace is the named one.
func ProcessesIn(netnsName string) ([]int, error) {
	if _, err := os.Stat(NetnsPath(netnsName)); err != nil {
		return nil, fmt.Errorf("netns %s: %w", netnsName, err)
	}
	all, err := OtherPIDs()
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, pid := range all {
		if InNetns(pid, netnsName) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// OtherPIDs lists every process on the host but the calling one.
func OtherPIDs() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// killProcessesIn SIGKILLs every process in the namespace and waits briefly
// for them to go: a process left in a deleted namespace keeps it alive,
// unreachable, with whatever it holds.
func killProcessesIn(netnsName string) error {
	pids, err := ProcessesIn(netnsName)
	if err != nil {
		return err
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		left, err := ProcessesIn(netnsName)
		if err != nil || len(left) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("netns %s: processes %v survive SIGKILL", netnsName, left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
