package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/kestrelnet/kestrel/sim/cgroups"
	"github.com/kestrelnet/kestrel/sim/controlplane"
	"github.com/kestrelnet/kestrel/sim/network"
)

// Leftovers lists what cluster name still holds on this host, one line per
// thing: its namespaces, root links, underlay address, processes, bpffs pins
// state dir and cgroups. After Down it must be empty.
func Leftovers(name string) ([]string, error) {
	if err := network.ValidateName(name); err != nil {
		return nil, err
	}
	var out []string
	prefix := network.Prefix(name)
	names, err := network.ListNetns()
	if err != nil {
		return nil, err
	}
	for _, ns := range names {
		if ns == prefix+"-ul" || ns == network.OutsideNetns(name) || strings.HasPrefix(ns, prefix+"-node-") || strings.HasPrefix(ns, prefix+"-pod-") {
			out = append(out, "netns "+ns)
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		if n := l.Attrs().Name; n == prefix || strings.HasPrefix(n, prefix+"-") {
			out = append(out, "link "+n)
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if a.IP.Equal(network.GatewayIP().AsSlice()) || a.IP.Equal(network.GatewayIP6().AsSlice()) {
			out = append(out, "address "+a.IPNet.String())
		}
	}
	procs, err := processesOf(name)
	if err != nil {
		return nil, err
	}
	out = append(out, procs...)
	for _, p := range []string{filepath.Join(bpffsRoot, "kestrel", name), controlplane.DefaultStateDir(name)} {
		if _, err := os.Stat(p); err == nil {
			out = append(out, "path "+p)
		}
	}
	if dir, err := cgroups.ClusterDir(name); err == nil {
		if _, err := os.Stat(dir); err == nil {
			out = append(out, "cgroup "+dir)
		}
	}
	return out, nil
}

// processesOf finds the cluster's processes by what their command lines
// name: its state dir, by the rule the control plane starts them under
// (control plane, agents, kubelets, scheduler), or one of its namespaces
// (nsenter, and the workloads the kubelet starts with --netns).
func processesOf(name string) ([]string, error) {
	state := controlplane.DefaultStateDir(name)
	prefix := network.Prefix(name) + "-"
	pids, err := network.OtherPIDs()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, pid := range pids {
		raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if errors.Is(err, os.ErrNotExist) || len(raw) == 0 {
			continue // gone, or a kernel thread
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		cmdline := strings.Join(args, " ")
		if controlplane.NamesStateDir(args, state) || strings.Contains(cmdline, prefix) {
			out = append(out, fmt.Sprintf("process %d: %s", pid, cmdline))
		}
	}
	return out, nil
}
