package datapath

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The programs find a packet's endpoint by the device it crosses, and
// BPF_PROG_TEST_RUN gives a program a device only if it exists in the
// caller's network namespace. A test datapath therefore owns a sandbox: one
// thread in a private network namespace with a device per endpoint (a veth:
// this kernel has no dummy driver and loads no modules),
// which runs every test run. The namespace goes when the datapath closes.
type sandbox struct {
	calls   chan func()
	handle  *netlink.Handle
	devices map[uint32]uint32     // endpoint id -> ifindex of its device
	owners  map[netip.Addr]uint32 // address -> ifindex of the endpoint holding it
	stray   uint32                // a device no endpoint owns
	uplink  uint32                // the node's own device (FromNetdev, ToNetdev)
	closed  sync.Once
}

// TestMAC is the MAC a test datapath gives endpoints that name none; it is
// also the source MAC of frames from datapath/packet.
var TestMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}

func newSandbox() (*sandbox, error) {
	s := &sandbox{calls: make(chan func()), devices: map[uint32]uint32{}, owners: map[netip.Addr]uint32{}}
	errc := make(chan error)
	go func() {
		// Never unlocked: when this goroutine ends, its thread ends, and the
		// namespace with it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("test datapath: private network namespace: %w", err)
			return
		}
		h, err := netlink.NewHandle()
		if err != nil {
			errc <- fmt.Errorf("test datapath: netlink: %w", err)
			return
		}
		s.handle = h
		errc <- nil
		for f := range s.calls {
			f()
		}
		h.Close()
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	var err error
	s.do(func() {
		if s.stray, err = s.addDevice("stray"); err == nil {
			s.uplink, err = s.addDevice("uplink")
		}
	})
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// do runs f on the sandbox thread.
func (s *sandbox) do(f func()) {
	done := make(chan struct{})
	s.calls <- func() { f(); close(done) }
	<-done
}

func (s *sandbox) close() { s.closed.Do(func() { close(s.calls) }) }

// addDevice runs on the sandbox thread.
func (s *sandbox) addDevice(name string) (uint32, error) {
	if err := s.handle.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
		return 0, fmt.Errorf("test datapath: add device %s: %w", name, err)
	}
	l, err := s.handle.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("test datapath: device %s: %w", name, err)
	}
	return uint32(l.Attrs().Index), nil
}

// bind gives an endpoint that names no device its own device, and no
// MAC the test MAC, and records which device holds its addresses.
func (s *sandbox) bind(ep *Endpoint) error {
	if ep.IfIndex == 0 {
		ifindex, ok := s.devices[ep.ID]
		if !ok {
			var err error
			s.do(func() { ifindex, err = s.addDevice(fmt.Sprintf("ep%d", ep.ID)) })
			if err != nil {
				return err
			}
			s.devices[ep.ID] = ifindex
		}
		ep.IfIndex = ifindex
	}
	if len(ep.MAC) == 0 {
		ep.MAC = TestMAC
	}
	for _, ip := range ep.IPs {
		s.owners[ip.Unmap()] = ep.IfIndex
	}
	return nil
}

// deviceFor picks the device a frame would cross at hook h: the one of the
// endpoint whose address is the frame's pod-side address (source from a pod,
// destination to it), or a device no endpoint owns.
func (s *sandbox) deviceFor(h Hook, frame []byte) uint32 {
	if h == FromNetdev || h == ToNetdev {
		return s.uplink
	}
	src, dst := frameAddrs(frame)
	a := dst
	if h == FromContainer {
		a = src
	}
	if ifindex, ok := s.owners[a]; ok {
		return ifindex
	}
	return s.stray
}

// frameAddrs reads the IP (or ARP sender and target) addresses of a frame.
func frameAddrs(frame []byte) (src, dst netip.Addr) {
	if len(frame) < 14 {
		return
	}
	b := frame[14:]
	switch uint16(frame[12])<<8 | uint16(frame[13]) {
	case 0x0800:
		if len(b) >= 20 {
			src, dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		}
	case 0x86DD:
		if len(b) >= 40 {
			src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		}
	case 0x0806:
		if len(b) >= 28 {
			src, dst = netip.AddrFrom4([4]byte(b[14:18])), netip.AddrFrom4([4]byte(b[24:28]))
		}
	}
	return
}
