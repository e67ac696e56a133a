package simbench

import (
	"fmt"
	"net/netip"
	"runtime"
	"strings"
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
	var times []time.Duration
	err := inNetns(nsPath, func() (err error) {
		times, err = connectLoop(dst, n)
		return err
	})
	return times, err
}

// inNetns runs fn on a thread inside the network namespace at nsPath: the
// sockets fn opens belong to it.
func inNetns(nsPath string, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		// The thread enters the pod's namespace; it is never unlocked, so
		// it ends with this goroutine instead of serving others from there.
		runtime.LockOSThread()
		target, err := netns.GetFromPath(nsPath)
		if err != nil {
			done <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			done <- fmt.Errorf("enter %s: %w", nsPath, err)
			return
		}
		done <- fn()
	}()
	return <-done
}

// whoAnswers connects to dst, sends a line and returns the echo server's
// answer ("<pod> <port>"): which backend the connection reached.
func whoAnswers(dst netip.AddrPort) (string, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: 2}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}); err != nil {
		return "", err
	}
	if _, err := unix.Write(fd, []byte("who\n")); err != nil {
		return "", err
	}
	var got []byte
	buf := make([]byte, 256)
	for !strings.Contains(string(got), "\n") {
		n, err := unix.Read(fd, buf)
		if err != nil {
			return "", err
		}
		if n == 0 {
			break
		}
		got = append(got, buf[:n]...)
	}
	return strings.TrimSpace(string(got)), nil
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
