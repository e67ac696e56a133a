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
	times, failed, err := connectTimesFailing(nsPath, dst, n)
	if failed > 0 {
		return times, err
	}
	return times, nil
}

// connectTimesFailing is connectTimes that goes on after a failed connect,
// and counts the failures.
func connectTimesFailing(nsPath string, dst netip.AddrPort, n int) (times []time.Duration, failed int, firstErr error) {
	err := inNetns(nsPath, func() error {
		times, failed, firstErr = connectLoop(dst, n)
		return nil
	})
	if err != nil {
		return nil, n, err
	}
	return times, failed, firstErr
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

// dial opens a TCP connection to dst and returns the socket (blocking
// again, with 2 s send and receive timeouts, closed with a reset) and how
// long the connect took. The connect itself is non-blocking and waited for
// with poll, which is retried when a signal interrupts it (the Go runtime
// sends them), so a connect is never cut short or timed twice.
func dial(dst netip.AddrPort) (int, time.Duration, error) {
	if !dst.Addr().Is4() {
		return -1, 0, fmt.Errorf("connect %s: IPv4 only", dst)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, 0, err
	}
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	start := time.Now()
	err = unix.Connect(fd, &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()})
	if err == unix.EINPROGRESS {
		err = waitWritable(fd, start.Add(2*time.Second))
	}
	took := time.Since(start)
	if err == nil {
		var soErr int
		if soErr, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && soErr != 0 {
			err = unix.Errno(soErr)
		}
	}
	if err == nil {
		err = unix.SetNonblock(fd, false)
	}
	if err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("connect %s: %w", dst, err)
	}
	tv := unix.Timeval{Sec: 2}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return fd, took, nil
}

func waitWritable(fd int, deadline time.Time) error {
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return unix.ETIMEDOUT
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if err == unix.EINTR {
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

// retryEINTR repeats a read or write a signal interrupted.
func retryEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != unix.EINTR {
			return n, err
		}
	}
}

// whoAnswers connects to dst, sends a line and returns the echo server's
// answer ("<pod> <port>"): which backend the connection reached.
func whoAnswers(dst netip.AddrPort) (string, error) {
	fd, _, err := dial(dst)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	if _, err := retryEINTR(func() (int, error) { return unix.Write(fd, []byte("who\n")) }); err != nil {
		return "", err
	}
	var got []byte
	buf := make([]byte, 256)
	for !strings.Contains(string(got), "\n") {
		n, err := retryEINTR(func() (int, error) { return unix.Read(fd, buf) })
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

// connectLoop makes n connects; one that fails (a timeout) is counted and
// its error kept, not timed.
func connectLoop(dst netip.AddrPort, n int) (times []time.Duration, failed int, firstErr error) {
	times = make([]time.Duration, 0, n)
	for range n {
		fd, took, err := dial(dst)
		if err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		unix.Close(fd)
		times = append(times, took)
	}
	return times, failed, firstErr
}

// InNetns runs fn on a thread inside the network namespace at nsPath (for
// `kestrel bench steady-client`).
func InNetns(nsPath string, fn func() error) error { return inNetns(nsPath, fn) }
