package datapath

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// PodDeviceLinks are the two TCX attachments on a pod's host-side veth.
type PodDeviceLinks struct {
	Ingress, Egress link.Link
}

// Close detaches both programs.
func (l *PodDeviceLinks) Close() error {
	return errors.Join(l.Ingress.Close(), l.Egress.Close())
}

// AttachPodDevice attaches from_container to TCX ingress and to_container to
// TCX egress of the host-side veth with this ifindex (resolved in the calling
// thread's network namespace).
func (d *Datapath) AttachPodDevice(ifindex int) (*PodDeviceLinks, error) {
	in, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: d.objs.FromContainer, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		return nil, attachError(ifindex, "ingress", err)
	}
	out, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: d.objs.ToContainer, Attach: ebpf.AttachTCXEgress})
	if err != nil {
		in.Close()
		return nil, attachError(ifindex, "egress", err)
	}
	return &PodDeviceLinks{Ingress: in, Egress: out}, nil
}

func attachError(ifindex int, dir string, err error) error {
	if errors.Is(err, ebpf.ErrNotSupported) {
		return &MissingFeatureError{Feature: "TCX attachment", Err: err}
	}
	return fmt.Errorf("attach to TCX %s of ifindex %d: %w", dir, ifindex, err)
}
