package datapath

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// PodDeviceLinks are the two TCX attachments on a pod's host-side veth.
type PodDeviceLinks struct {
	Ingress, Egress link.Link
	pin             string
}

// Close releases the links. Pinned links stay attached (that is what pinning
// is for); unpinned ones detach.
func (l *PodDeviceLinks) Close() error {
	return errors.Join(l.Ingress.Close(), l.Egress.Close())
}

// Detach removes the programs from the device and the pins, if any.
func (l *PodDeviceLinks) Detach() error {
	if l.pin != "" {
		if err := errors.Join(l.Ingress.Unpin(), l.Egress.Unpin()); err != nil {
			return err
		}
	}
	return l.Close()
}

// AttachPodDevice attaches from_container to TCX ingress and to_container to
// TCX egress of the host-side veth with this ifindex (resolved in the calling
// thread's network namespace).
//
// With a non-empty pin (a bpffs path prefix chosen by the caller, one per
// device), the links are pinned at pin+"-ingress" and pin+"-egress", so the
// programs stay attached when this process dies. If links are already pinned
// there, they are adopted: switched to this Datapath's programs in place,
// without a moment of detachment.
func (d *Datapath) AttachPodDevice(ifindex int, pin string) (*PodDeviceLinks, error) {
	in, err := d.attachOne(ifindex, pin, "ingress", d.objs.FromContainer, ebpf.AttachTCXIngress)
	if err != nil {
		return nil, err
	}
	out, err := d.attachOne(ifindex, pin, "egress", d.objs.ToContainer, ebpf.AttachTCXEgress)
	if err != nil {
		in.Close()
		return nil, err
	}
	return &PodDeviceLinks{Ingress: in, Egress: out, pin: pin}, nil
}

func (d *Datapath) attachOne(ifindex int, pin, dir string, prog *ebpf.Program, at ebpf.AttachType) (link.Link, error) {
	path := pin + "-" + dir
	if pin != "" {
		if l, err := link.LoadPinnedLink(path, nil); err == nil {
			if err := l.Update(prog); err != nil {
				l.Close()
				return nil, fmt.Errorf("adopt pinned TCX %s link %s: %w", dir, path, err)
			}
			return l, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("load pinned TCX %s link %s: %w", dir, path, err)
		}
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: prog, Attach: at})
	if err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			return nil, &MissingFeatureError{Feature: "TCX attachment", Err: err}
		}
		return nil, fmt.Errorf("attach to TCX %s of ifindex %d: %w", dir, ifindex, err)
	}
	if pin != "" {
		if err := l.Pin(path); err != nil {
			l.Close()
			return nil, fmt.Errorf("pin TCX %s link at %s: %w", dir, path, err)
		}
	}
	return l, nil
}
