package cni

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/kestrelnet/kestrel/agent/api"
)

// Add wires a pod in and prints its CNI result. It answers only once the
// agent has confirmed the endpoint is in the datapath with its policy, so
// the pod never sends a packet before its policy is enforced. Any failure
// undoes everything done so far: a pod is either fully wired or not at all.
func Add(args *skel.CmdArgs) (err error) {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	pod, err := parseArgs(args.Args)
	if err != nil {
		return types.NewError(types.ErrInvalidEnvironmentVariables, err.Error(), "")
	}
	if len(pod.IPs) == 0 {
		// No KESTREL_IP: the annotation may come through the runtime (annotations.go).
		if v, err := requestedFromRuntimeConfig(args.StdinData); err != nil {
			return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
		} else if v != "" {
			if pod.IPs, err = parseRequestedIPs(v); err != nil {
				return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("pod annotation %s: %v", ipAnnotation, err), "")
			}
		}
	}
	podNS, err := netns.GetFromPath(args.Netns)
	if err != nil {
		return types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("open pod netns %s: %v", args.Netns, err), "")
	}
	defer podNS.Close()
	podNL, err := netlink.NewHandleAt(podNS)
	if err != nil {
		return fmt.Errorf("netlink in pod netns %s: %w", args.Netns, err)
	}
	defer podNL.Delete()

	store := newIPAMStore(conf)
	ips, err := store.Allocate(args.ContainerID, args.IfName, pod.IPs)
	if err != nil {
		return err
	}
	hostName := HostIfName(args.ContainerID)
	agent := api.NewClient(conf.AgentSocket)
	registered := false
	defer func() {
		if err == nil {
			return
		}
		undoAdd(agent, args, hostName, store, registered)
	}()

	host, err := createVeth(hostName, args.IfName, conf.MTU, podNS)
	if err != nil {
		return err
	}
	podLink, err := configurePod(podNL, args.IfName, ips, conf.Gateway)
	if err != nil {
		return err
	}
	if err := configureHost(host, ips); err != nil {
		return err
	}

	ctx, cancel := withTimeout(agentPutTimeout)
	defer cancel()
	registered = true
	_, err = agent.PutEndpoint(ctx, api.EndpointRequest{
		ContainerID:   args.ContainerID,
		PodNamespace:  pod.Namespace,
		PodName:       pod.Name,
		Netns:         args.Netns,
		HostInterface: hostName,
		HostIfIndex:   host.Attrs().Index,
		MAC:           podLink.Attrs().HardwareAddr.String(),
		IPs:           addrStrings(ips),
	})
	if err != nil {
		return types.NewError(types.ErrInternal, "kestrel-agent did not register the endpoint", err.Error())
	}

	return types.PrintResult(addResult(conf, args, host, podLink, ips), conf.CNIVersion)
}

// undoAdd takes back a failed ADD. It is best effort: what it cannot undo
// is reported on stderr, and the runtime's DEL, which does the same, gets
// another go at it.
func undoAdd(agent *api.Client, args *skel.CmdArgs, hostName string, store *ipamStore, registered bool) {
	if registered {
		// The PUT may have reached the agent before failing (a timeout).
		ctx, cancel := withTimeout(agentDeleteTimeout)
		defer cancel()
		if err := agent.DeleteEndpoint(ctx, args.ContainerID); err != nil {
			fmt.Fprintf(os.Stderr, "kestrel-cni: undo ADD %s: %v\n", args.ContainerID, err)
		}
	}
	if err := deleteLink(hostName); err != nil {
		fmt.Fprintf(os.Stderr, "kestrel-cni: undo ADD %s: %v\n", args.ContainerID, err)
	}
	if err := store.Release(args.ContainerID, args.IfName); err != nil {
		fmt.Fprintf(os.Stderr, "kestrel-cni: undo ADD %s: %v\n", args.ContainerID, err)
	}
}

// addResult lists both interfaces and, per address, its gateway and the
// pod's routes in that family.
func addResult(conf *Config, args *skel.CmdArgs, host, podLink netlink.Link, ips []netip.Addr) *types100.Result {
	const podIfIndex = 1 // index of the pod's interface in Interfaces
	res := &types100.Result{
		CNIVersion: types100.ImplementedSpecVersion,
		Interfaces: []*types100.Interface{
			{Name: host.Attrs().Name, Mac: host.Attrs().HardwareAddr.String()},
			{Name: args.IfName, Mac: podLink.Attrs().HardwareAddr.String(), Mtu: podLink.Attrs().MTU, Sandbox: args.Netns},
		},
	}
	for _, ip := range ips {
		res.IPs = append(res.IPs, &types100.IPConfig{
			Interface: types100.Int(podIfIndex),
			Address:   *hostNet(ip),
			Gateway:   conf.GatewayOf(ip).AsSlice(),
		})
		for _, r := range podRoutes(podLink.Attrs().Index, ip, conf.Gateway) {
			route := &types.Route{Dst: *r.Dst, GW: r.Gw}
			if r.Scope == netlink.SCOPE_LINK {
				scope := int(netlink.SCOPE_LINK)
				route.Scope = &scope
			}
			res.Routes = append(res.Routes, route)
		}
	}
	return res
}

func addrStrings(ips []netip.Addr) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}
