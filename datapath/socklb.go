package datapath

// Socket-level load balancing (bpf/sock.c): cgroup programs that translate a
// service frontend to a backend at connect() and sendmsg(), and back at
// recvmsg() and getpeername(), over the same service maps as the per-packet
// translation.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// socketLB is the loaded socket programs (Config.SocketLB).
type socketLB struct {
	objs sockObjects
}

// sockHook is one socket program and where it attaches.
type sockHook struct {
	name   string
	prog   *ebpf.Program
	attach ebpf.AttachType
}

func (s *socketLB) hooks() []sockHook {
	p := &s.objs.sockPrograms
	return []sockHook{
		{"connect4", p.SockConnect4, ebpf.AttachCGroupInet4Connect},
		{"connect6", p.SockConnect6, ebpf.AttachCGroupInet6Connect},
		{"sendmsg4", p.SockSendmsg4, ebpf.AttachCGroupUDP4Sendmsg},
		{"sendmsg6", p.SockSendmsg6, ebpf.AttachCGroupUDP6Sendmsg},
		{"recvmsg4", p.SockRecvmsg4, ebpf.AttachCGroupUDP4Recvmsg},
		{"recvmsg6", p.SockRecvmsg6, ebpf.AttachCGroupUDP6Recvmsg},
		{"getpeername4", p.SockGetpeername4, ebpf.AttachCgroupInet4GetPeername},
		{"getpeername6", p.SockGetpeername6, ebpf.AttachCgroupInet6GetPeername},
	}
}

// loadSocketLB loads bpf/sock.c over d's maps: every map it shares with
// lxc.c is d's own (a copy would be an empty service table), and its own
// reverse map is pinned with d's maps when d's are, so a restarted agent
// still gives open sockets their frontend back.
func (d *Datapath) loadSocketLB() (*socketLB, error) {
	spec, err := loadSock()
	if err != nil {
		return nil, fmt.Errorf("parse embedded socket LB object: %w", err)
	}
	shared := d.mapsByName()
	replace := map[string]*ebpf.Map{}
	for name, ms := range spec.Maps {
		if m, ok := shared[name]; ok {
			replace[name] = m
			continue
		}
		if d.cfg.PinPath == "" {
			ms.Pinning = ebpf.PinNone
		}
	}
	opts := ebpf.CollectionOptions{MapReplacements: replace}
	opts.Maps.PinPath = d.cfg.PinPath
	s := &socketLB{}
	if err := spec.LoadAndAssign(&s.objs, &opts); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("verifier rejected the socket LB programs: %+v", ve)
		}
		return nil, fmt.Errorf("load socket LB programs: %w", err)
	}
	return s, nil
}

// CgroupLinks are the socket programs attached to one cgroup.
type CgroupLinks struct {
	Cgroup string
	links  []link.Link
	pins   []string
}

// Close releases the links: pinned ones stay attached, the others detach.
func (l *CgroupLinks) Close() error {
	var errs []error
	for _, k := range l.links {
		errs = append(errs, k.Close())
	}
	return errors.Join(errs...)
}

// Detach removes the programs from the cgroup and their pins.
func (l *CgroupLinks) Detach() error {
	var errs []error
	for i, k := range l.links {
		if l.pins[i] != "" {
			errs = append(errs, k.Unpin())
		}
	}
	return errors.Join(append(errs, l.Close())...)
}

// SocketLB says whether the datapath has its socket programs
// (Config.SocketLB).
func (d *Datapath) SocketLB() bool { return d.sock != nil }

// AttachCgroup attaches the socket programs to a cgroup v2 directory: every
// socket a process in it or below it makes is translated. With a non-empty
// pin (a bpffs path prefix, one per cgroup), each link is pinned at
// pin+"-"+hook (connect4, sendmsg6, ...), so the programs stay attached when
// this process dies, and links already pinned there are adopted: switched to
// this datapath's programs in place.
func (d *Datapath) AttachCgroup(cgroup, pin string) (*CgroupLinks, error) {
	if d.sock == nil {
		return nil, errors.New("socket LB: the datapath was loaded without it (Config.SocketLB)")
	}
	if err := CheckCgroup2(cgroup); err != nil {
		return nil, err
	}
	out := &CgroupLinks{Cgroup: cgroup}
	for _, h := range d.sock.hooks() {
		path := ""
		if pin != "" {
			path = pin + "-" + h.name
		}
		l, err := attachCgroupHook(cgroup, path, h)
		if err != nil {
			out.Close()
			return nil, err
		}
		out.links = append(out.links, l)
		out.pins = append(out.pins, path)
	}
	return out, nil
}

func attachCgroupHook(cgroup, path string, h sockHook) (link.Link, error) {
	if path != "" {
		if l, err := link.LoadPinnedLink(path, nil); err == nil {
			if err := l.Update(h.prog); err != nil {
				l.Close()
				return nil, fmt.Errorf("adopt pinned %s link %s: %w", h.name, path, err)
			}
			return l, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("load pinned %s link %s: %w", h.name, path, err)
		}
	}
	l, err := link.AttachCgroup(link.CgroupOptions{Path: cgroup, Attach: h.attach, Program: h.prog})
	if err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			return nil, &MissingFeatureError{Feature: "cgroup " + h.name + " attachment", Err: err}
		}
		return nil, fmt.Errorf("attach %s to cgroup %s: %w", h.name, cgroup, err)
	}
	if path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			l.Close()
			return nil, err
		}
		if err := l.Pin(path); err != nil {
			l.Close()
			return nil, fmt.Errorf("pin %s link at %s: %w", h.name, path, err)
		}
	}
	return l, nil
}

// SocketTranslations counts the sockets the socket programs translated and
// still remember (lb_sock_revnat, LRU).
func (d *Datapath) SocketTranslations() int {
	if d.sock == nil {
		return 0
	}
	n := 0
	var k sockSockRevnatKey
	var v sockSockRevnatEntry
	it := d.sock.objs.LbSockRevnat.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	return n
}

// DetachPinnedCgroup removes socket programs an earlier run attached and
// pinned at pin (AttachCgroup's prefix), for an agent started with socket
// LB off. Hooks with no pin are skipped.
func DetachPinnedCgroup(pin string) error {
	var errs []error
	for _, h := range (&socketLB{}).hooks() {
		path := pin + "-" + h.name
		l, err := link.LoadPinnedLink(path, nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			errs = append(errs, fmt.Errorf("load pinned %s link %s: %w", h.name, path, err))
			continue
		}
		errs = append(errs, l.Unpin(), l.Close())
	}
	return errors.Join(errs...)
}
