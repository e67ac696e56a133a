package cluster

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// PodPID finds a process of the pod with this UID on this machine (kind's pods are
// processes of this kernel) by its cgroup, which names the pod's UID (kubelet's
// cgroup per pod, "pod<uid>", with "_" for "-" under systemd's driver). Its
// /proc/PID/ns/net is the pod's network namespace.
func PodPID(uid string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if InPod(pid, uid) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process of pod %s on this machine", uid)
}

// InPod reports whether process pid is in the pod with this UID.
func InPod(pid int, uid string) bool {
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return false
	}
	defer f.Close()
	under := strings.ReplaceAll(uid, "-", "_")
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, "pod"+uid) || strings.Contains(l, "pod"+under) {
			return true
		}
	}
	return false
}
