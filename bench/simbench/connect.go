package simbench

import (
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// connectTimes opens n TCP connections to dst from inside the network
// namespace at nsPath, one after the other, and returns how long each
// connect() took: a SYN out and its SYN-ACK back, the first packet of a
// flow through whatever translates dst. Each socket is closed with a reset,
// so no connection lingers on either side.
func connectTimes(nsPath string, dst netip.AddrPort, n int) ([]time.Duration, error) {
	type result struct {
		times []time.Duration
		err   error
	}
	done := make(chan result, 1)
	go func() {
		// The thread enters the pod's namespace; it is never unlocked, so
		// it ends with this goroutine instead of serving others from there.
		runtime.LockOSThread()
		target, err := netns.GetFromPath(nsPath)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			done <- result{err: fmt.Errorf("enter %s: %w", nsPath, err)}
			return
		}
		times, err := connectLoop(dst, n)
		done <- result{times, err}
	}()
	r := <-done
	return r.times, r.err
}

func connectLoop(dst netip.AddrPort, n int) ([]time.Duration, error) {
	if !dst.Addr().Is4() {
		return nil, fmt.Errorf("connect %s: IPv4 only", dst)
	}
	sa := &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}
	out := make([]time.Duration, 0, n)
	for range n {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		// A blocking connect gives up after the send timeout.
		tv := unix.Timeval{Sec: 2}
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
		unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		start := time.Now()
		err = unix.Connect(fd, sa)
		took := time.Since(start)
		unix.Close(fd)
		if err != nil {
			return nil, fmt.Errorf("connect %s: %w", dst, err)
		}
		out = append(out, took)
	}
	return out, nil
}
