package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/agent/endpoint"
	flowpb "github.com/kestrelnet/kestrel/agent/hubbleapi/flow"
	"github.com/kestrelnet/kestrel/datapath"
)

// PutEndpoint attaches the datapath to the pod's host-side device, records
// the endpoint, and returns once a regeneration has put it in the datapath
// with its policy.
func (d *Daemon) PutEndpoint(ctx context.Context, req api.EndpointRequest) (api.EndpointResponse, error) {
	rec, err := validate(req)
	if err != nil {
		return api.EndpointResponse{}, err
	}
	d.epMu.Lock()
	if old, ok := d.registry.Get(rec.ContainerID); ok && old.HostIfIndex != rec.HostIfIndex {
		// The device was recreated: the old links police nothing any more.
		if l := d.links[rec.ContainerID]; l != nil {
			l.Detach()
			delete(d.links, rec.ContainerID)
		}
	}
	if d.links[rec.ContainerID] == nil {
		l, err := d.dp.Attach(rec.HostIfIndex, d.pinOf(rec.ContainerID))
		if err != nil {
			d.epMu.Unlock()
			return api.EndpointResponse{}, fmt.Errorf("attach the datapath to %s (ifindex %d): %w", rec.HostInterface, rec.HostIfIndex, err)
		}
		d.links[rec.ContainerID] = l
	}
	d.mu.Lock()
	_, existed := d.registry.Get(rec.ContainerID)
	rec, err = d.registry.Put(rec)
	d.mu.Unlock()
	d.epMu.Unlock()
	if err != nil {
		return api.EndpointResponse{}, fmt.Errorf("record endpoint: %w", err)
	}
	if !existed {
		d.endpointEvent(flowpb.AgentEventType_ENDPOINT_CREATED, rec.ID, rec.Namespace, rec.Name)
	}
	d.log.Info("endpoint registered", "container", rec.ContainerID, "pod", rec.Pod(), "id", rec.ID, "ips", rec.IPs, "mac", rec.MAC, "device", rec.HostInterface)
	d.trigger()
	return d.waitInstalled(ctx, rec)
}

func validate(req api.EndpointRequest) (endpoint.Record, error) {
	bad := func(format string, a ...any) (endpoint.Record, error) {
		return endpoint.Record{}, fmt.Errorf("%w: %s", api.ErrInvalid, fmt.Sprintf(format, a...))
	}
	switch {
	case req.ContainerID == "" || strings.ContainsAny(req.ContainerID, "/\x00"):
		return bad("containerID %q is empty or has a slash", req.ContainerID)
	case req.PodNamespace == "" || req.PodName == "":
		return bad("podNamespace and podName are required")
	case req.HostIfIndex <= 0:
		return bad("hostIfIndex %d is not an interface index", req.HostIfIndex)
	case len(req.IPs) == 0:
		return bad("ips: at least one address is required")
	}
	if mac, err := net.ParseMAC(req.MAC); err != nil || len(mac) != 6 {
		return bad("mac %q is not an Ethernet address", req.MAC)
	}
	rec := endpoint.Record{
		ContainerID: req.ContainerID, Namespace: req.PodNamespace, Name: req.PodName,
		HostInterface: req.HostInterface, HostIfIndex: req.HostIfIndex, Netns: req.Netns, MAC: req.MAC,
	}
	families := map[bool]netip.Addr{}
	for i, s := range req.IPs {
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.Zone() != "" {
			return bad("ips[%d]: %q is not an IP address", i, s)
		}
		ip = ip.Unmap()
		// One per family, as in a Pod's status.podIPs: the ipcache and the
		// datapath's source check take the pod's addresses to be its own.
		if other, dup := families[ip.Is6()]; dup {
			return bad("ips[%d]: %s is a second address of the family of %s", i, ip, other)
		}
		families[ip.Is6()] = ip
		rec.IPs = append(rec.IPs, ip)
	}
	return rec, nil
}

// waitInstalled waits for a regeneration that included rec.
func (d *Daemon) waitInstalled(ctx context.Context, rec endpoint.Record) (api.EndpointResponse, error) {
	timeout := time.NewTimer(d.cfg.EndpointTimeout)
	defer timeout.Stop()
	for {
		d.mu.Lock()
		if d.installedSeq[rec.ContainerID] >= rec.Seq {
			resp := api.EndpointResponse{ID: rec.ID, Identity: d.identities[rec.ContainerID]}
			d.mu.Unlock()
			return resp, nil
		}
		changed, lastErr, started := d.changed, d.lastErr, d.started
		d.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return api.EndpointResponse{}, ctx.Err()
		case <-timeout.C:
			var why string
			switch _, known := d.watch.Pod(rec.Namespace, rec.Name); {
			case !started:
				why = "the agent's informer caches have not synced with the API server"
			case !known:
				why = fmt.Sprintf("pod %s is not in the agent's informer cache", rec.Pod())
			case lastErr != nil:
				why = "regeneration fails: " + lastErr.Error()
			default:
				why = "no regeneration completed"
			}
			return api.EndpointResponse{}, fmt.Errorf("%w: endpoint %s (pod %s) not in the datapath after %s: %s",
				api.ErrTimeout, rec.ContainerID, rec.Pod(), d.cfg.EndpointTimeout, why)
		}
	}
}

// DeleteEndpoint detaches and forgets an endpoint; an unknown one is fine.
func (d *Daemon) DeleteEndpoint(_ context.Context, containerID string) error {
	if containerID == "" || strings.ContainsAny(containerID, "/\x00") {
		return fmt.Errorf("%w: containerID %q", api.ErrInvalid, containerID)
	}
	d.epMu.Lock()
	defer d.epMu.Unlock()
	if l := d.links[containerID]; l != nil {
		if err := l.Detach(); err != nil {
			return fmt.Errorf("detach endpoint %s: %w", containerID, err)
		}
		delete(d.links, containerID)
	} else if err := removePins(d.pinOf(containerID)); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if rec, ok := d.registry.Get(containerID); ok {
		defer d.endpointEvent(flowpb.AgentEventType_ENDPOINT_DELETED, rec.ID, rec.Namespace, rec.Name)
		// Its lookups go only once it is gone (below): a failed removal
		// is retried, and the pod keeps its peers meanwhile.
		defer func() {
			if _, still := d.registry.Get(containerID); !still {
				d.forgetFQDNs(rec.ID)
			}
		}()
	}
	if ep, ok := d.installed[containerID]; ok {
		if err := d.dp.DeleteEndpoint(ep); err != nil {
			return fmt.Errorf("remove endpoint %s from the datapath: %w", containerID, err)
		}
		delete(d.installed, containerID)
	}
	delete(d.installedSeq, containerID)
	delete(d.identities, containerID)
	if err := d.registry.Delete(containerID); err != nil {
		return fmt.Errorf("forget endpoint %s: %w", containerID, err)
	}
	d.log.Info("endpoint removed", "container", containerID)
	d.trigger()
	return nil
}

// removePins unpins links nobody holds (an agent that could not adopt them).
// Removing the last reference detaches them.
func removePins(pin string) error {
	for _, p := range []string{pin + "-ingress", pin + "-egress"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("unpin %s: %w", p, err)
		}
	}
	return nil
}

// adopt takes over the endpoints an earlier agent registered: their pinned
// links switch to this agent's programs without a gap, and the first
// regeneration rewrites their state. An endpoint whose device is gone (its
// pod was removed while no agent ran) is forgotten and its entries removed.
func (d *Daemon) adopt() {
	d.epMu.Lock()
	defer d.epMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, rec := range d.registry.List() {
		// The previous agent installed this; the first Apply replaces or removes it.
		d.installed[rec.ContainerID] = datapath.Endpoint{ID: rec.ID, IPs: rec.IPs}
		ifindex := rec.HostIfIndex
		if rec.HostInterface != "" {
			iface, err := net.InterfaceByName(rec.HostInterface)
			if err != nil {
				d.log.Warn("endpoint's device is gone; forgetting the endpoint", "container", rec.ContainerID, "pod", rec.Pod(), "device", rec.HostInterface)
				removePins(d.pinOf(rec.ContainerID))
				d.registry.Delete(rec.ContainerID)
				continue
			}
			ifindex = iface.Index
		}
		l, err := d.dp.Attach(ifindex, d.pinOf(rec.ContainerID))
		if err != nil {
			d.log.Error("could not adopt endpoint's links", "container", rec.ContainerID, "pod", rec.Pod(), "err", err)
			continue
		}
		d.links[rec.ContainerID] = l
		d.log.Info("adopted endpoint", "container", rec.ContainerID, "pod", rec.Pod(), "id", rec.ID)
	}
}
