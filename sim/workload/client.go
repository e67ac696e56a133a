package workload

// The client side of a pod: connections made by a process that lives in the
// pod (its namespace and its cgroup), as a pod's own program makes them.
// Socket-level load balancing works on the sockets of processes in the pod's
// cgroup, so a probe or a benchmark to a ClusterIP must come from such a
// process, not from a goroutine that only entered the pod's namespace:
// `kestrel sim connect` is that process (RunInPod starts it).

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kestrelnet/kestrel/sim/cgroups"
	"github.com/kestrelnet/kestrel/sim/network"
)

// ConnectRequest is what a client process does.
type ConnectRequest struct {
	Netns    string // the pod's namespace name; empty: the process's own
	Protocol string // "tcp" or "udp"
	Target   string // address:port
	Msg      string // sent once connected; its answer is read (Count 1)
	Count    int    // >1: connect Count times, time each connect(), send nothing
	// SrcPorts, with Count > 1, binds each connection to the next source
	// port of [SrcPorts[0], SrcPorts[1]] in turn instead of an ephemeral one.
	SrcPorts [2]int        `json:",omitempty"`
	Timeout  time.Duration // per connect or exchange
}

// ConnectResult is what it saw.
type ConnectResult struct {
	Err     string `json:",omitempty"`
	Refused bool   `json:",omitempty"` // ECONNREFUSED (an ICMP port unreachable)
	Timeout bool   `json:",omitempty"`
	Answer  string `json:",omitempty"`
	Peer    string `json:",omitempty"` // getpeername() of the connected socket
	// ConnectNs is each connect()'s duration (Count > 1).
	ConnectNs []int64 `json:",omitempty"`
}

// Connect runs req in this process: its thread enters req.Netns for the
// sockets it makes.
func Connect(req ConnectRequest) ConnectResult {
	if req.Timeout <= 0 {
		req.Timeout = 1500 * time.Millisecond
	}
	var res ConnectResult
	run := func() error {
		if req.Count > 1 {
			return connectMany(req, &res)
		}
		return exchange(req, &res)
	}
	var err error
	if req.Netns == "" {
		// Already in the pod (a process a container runtime started there).
		err = run()
	} else {
		err = network.Do(req.Netns, run)
	}
	if err != nil {
		var ne net.Error
		res.Err = err.Error()
		res.Refused = errors.Is(err, syscall.ECONNREFUSED)
		res.Timeout = errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
	}
	return res
}

func exchange(req ConnectRequest, res *ConnectResult) error {
	c, err := net.DialTimeout(req.Protocol, req.Target, req.Timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	if res.Peer, err = peerOf(c.(syscall.Conn)); err != nil {
		return err
	}
	c.SetDeadline(time.Now().Add(req.Timeout))
	if _, err := c.Write([]byte(req.Msg)); err != nil {
		return err
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	res.Answer = string(buf[:n])
	return nil
}

// connectMany times connect() alone: the socket is made first and closed
// after, so each figure is the call (for TCP, the handshake) only.
func connectMany(req ConnectRequest, res *ConnectResult) error {
	ap, err := netip.ParseAddrPort(req.Target)
	if err != nil {
		return err
	}
	family, sa := unix.AF_INET, unix.Sockaddr(&unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()})
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	typ := unix.SOCK_STREAM
	if req.Protocol == "udp" {
		typ = unix.SOCK_DGRAM
	}
	res.ConnectNs = make([]int64, 0, req.Count)
	for range req.Count {
		fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			return err
		}
		if lo, hi := req.SrcPorts[0], req.SrcPorts[1]; lo > 0 && hi >= lo {
			port := lo + len(res.ConnectNs)%(hi-lo+1)
			var local unix.Sockaddr = &unix.SockaddrInet4{Port: port}
			if family == unix.AF_INET6 {
				local = &unix.SockaddrInet6{Port: port}
			}
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			if err := unix.Bind(fd, local); err != nil {
				unix.Close(fd)
				return fmt.Errorf("bind source port %d: %w", port, err)
			}
		}
		start := time.Now()
		err = connectFD(fd, sa, req.Timeout)
		took := time.Since(start)
		if err == nil && typ == unix.SOCK_STREAM {
			err = settle(fd, req.Timeout)
		}
		// Close with RST (linger 0), so the client keeps no TIME_WAIT
		// socket per connect and the port range does not run out.
		unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("connect %d to %s: %w", len(res.ConnectNs)+1, req.Target, err)
		}
		res.ConnectNs = append(res.ConnectNs, took.Nanoseconds())
	}
	return nil
}

// settle exchanges a line with the server before the connection is reset:
// the handshake's last ACK leaves from softirq on whichever CPU took the
// SYN-ACK, the RST from this thread, so the RST could overtake it and leave
// the server a half-open request on the tuple, which a later connect from
// the same port would meet (its SYN answered as a retransmission, with the
// old sequence number). An answer proves the server has the connection.
func settle(fd int, timeout time.Duration) error {
	if _, err := unix.Write(fd, []byte("x\n")); err != nil {
		return err
	}
	if err := await(fd, unix.POLLIN, timeout); err != nil {
		return fmt.Errorf("the server did not answer: %w", err)
	}
	buf := make([]byte, 256)
	if _, err := unix.Read(fd, buf); err != nil {
		return fmt.Errorf("the server did not answer: %w", err)
	}
	return nil
}

// connectFD is connect() on a non-blocking socket, waited for: a blocking
// connect() returns EINTR whenever the Go runtime signals the thread.
func connectFD(fd int, sa unix.Sockaddr, timeout time.Duration) error {
	err := unix.Connect(fd, sa)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINPROGRESS) {
		return err
	}
	if err := await(fd, unix.POLLOUT, timeout); err != nil {
		return err
	}
	soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if soErr != 0 {
		return unix.Errno(soErr)
	}
	return nil
}

// await polls fd for events until timeout, through interruptions.
func await(fd int, events int16, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return os.ErrDeadlineExceeded
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
	}
}

func peerOf(c syscall.Conn) (string, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return "", err
	}
	var sa unix.Sockaddr
	var serr error
	rc.Control(func(fd uintptr) { sa, serr = unix.Getpeername(int(fd)) })
	if serr != nil {
		return "", serr
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String(), nil
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port)).String(), nil
	}
	return "", fmt.Errorf("peer of unknown family %T", sa)
}

// RunInPod runs req in a new `kestrel sim connect` process (kestrelBin)
// placed in cgroupDir (the pod's cgroup; empty: this process's own), as a
// program of the pod would.
func RunInPod(kestrelBin, cgroupDir string, req ConnectRequest) (ConnectResult, error) {
	raw, err := json.Marshal(req)
	if err != nil {
		return ConnectResult{}, err
	}
	cmd := exec.Command(kestrelBin, "sim", "connect", "--request", string(raw))
	if cgroupDir != "" {
		release, err := cgroups.Place(cmd, cgroupDir)
		if err != nil {
			return ConnectResult{}, err
		}
		defer release()
	}
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ConnectResult{}, fmt.Errorf("%s sim connect: %v: %s", kestrelBin, err, ee.Stderr)
		}
		return ConnectResult{}, fmt.Errorf("%s sim connect: %w", kestrelBin, err)
	}
	var res ConnectResult
	if err := json.Unmarshal(out, &res); err != nil {
		return ConnectResult{}, fmt.Errorf("%s sim connect said %q: %w", kestrelBin, out, err)
	}
	return res, nil
}
