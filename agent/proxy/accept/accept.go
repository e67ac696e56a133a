// Package accept runs the L7 proxies' accept loops on their transparent
// listeners (datapath.ListenProxy), where an accepted connection's local
// address is the original destination.
package accept

import (
	"errors"
	"net"
	"net/netip"
	"sync"
)

// Loop serves one listener's connections and remembers the open ones, so
// that closing the listener ends them too (a proxy being stopped must not
// leave relayed connections behind). The zero Loop is ready to use.
type Loop struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// Serve accepts on ln until it is closed, running serve on each connection
// in a goroutine of its own and closing the connection when serve returns.
// Once ln is closed it closes every connection still open and returns nil;
// another accept error is returned as it is.
func (l *Loop) Serve(ln net.Listener, serve func(net.Conn)) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				l.closeAll()
				return nil
			}
			return err
		}
		l.track(c, true)
		go func() {
			defer l.track(c, false)
			defer c.Close()
			serve(c)
		}()
	}
}

func (l *Loop) track(c net.Conn, add bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns == nil {
		l.conns = map[net.Conn]struct{}{}
	}
	if add {
		l.conns[c] = struct{}{}
	} else {
		delete(l.conns, c)
	}
}

func (l *Loop) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.Close()
	}
}

// AddrPort is a TCP address as a netip.AddrPort, an IPv4-mapped address
// unmapped; the zero AddrPort for any other kind of address.
func AddrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
