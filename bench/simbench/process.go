package simbench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/kestrelnet/kestrel/sim/cluster"
	"github.com/kestrelnet/kestrel/sim/controlplane"
	"github.com/kestrelnet/kestrel/sim/network"
)

// process is the program that programs a datapath's services on its node:
// the Kestrel agent or kube-proxy.
func (d datapath) process() string {
	if d.Mode == "" {
		return cluster.AgentProcess(network.NodeName(d.Node))
	}
	return cluster.KubeProxyProcess(network.NodeName(d.Node))
}

// pid of d's process in the cluster whose state directory is state.
func (d datapath) pid(state string) (int, error) {
	pid, ok := controlplane.RunningPID(state, d.process())
	if !ok {
		return 0, fmt.Errorf("%s: %s is not running", d.Name, d.process())
	}
	return pid, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times (100 on every
// Linux architecture Go supports).
const clockTicks = 100

// cpuSeconds is the CPU time of process pid and of its children it has
// waited for (kube-proxy's iptables-restore and nft runs), user and system,
// from /proc/PID/stat (utime, stime, cutime, cstime).
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields counted from 3 start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime..cstime are fields 14-17.
	if len(f) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var ticks int64
	for _, field := range f[11:15] {
		v, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %q: %w", pid, field, err)
		}
		ticks += v
	}
	return float64(ticks) / clockTicks, nil
}

// signalGroup sends sig to the process group of d's process (the sim
// starts each in a session of its own): kube-proxy and the iptables-restore
// or nft it is running.
func (d datapath) signalGroup(state string, sig syscall.Signal) error {
	pid, err := d.pid(state)
	if err != nil {
		return err
	}
	if err := syscall.Kill(-pid, sig); err != nil {
		return fmt.Errorf("%s: %s to process group %d: %w", d.Name, sig, pid, err)
	}
	return nil
}
