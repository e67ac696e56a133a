package workload

import (
	"bytes"
	"errors"
	"net"
	"time"
)

// readWait bounds how long a TCP client may stay silent before it gets its
// reply anyway: probes that only connect and read must not hang.
const readWait = time.Second

// maxRequest is the most the line protocol reads before replying.
const maxRequest = 1024

func (s *Server) startTCP(i int, addr string) error {
	return s.acceptTCP(i, addr, s.serveLine)
}

// acceptTCP listens on addr as the server's i-th address and hands every
// connection to serve, with the port it arrived on, until the server closes.
func (s *Server) acceptTCP(i int, addr string, serve func(c net.Conn, port int)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, ln)
	s.addrs[i] = ln.Addr()
	port := portOf(ln.Addr())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			go serve(c, port)
		}
	}()
	return nil
}

// idleWait is how long a connection that has had its first reply may stay
// silent before the server closes it: long-lived connections (the agent
// restart test) send a line now and then and get an answer to each.
const idleWait = 10 * time.Minute

// serveLine answers "<pod> <port> <client>\n" to each line the client sends, until
// the client closes or stays silent for idleWait. The first answer comes
// after one line, 1 KiB, a half-close, or readWait of silence, so probes
// that only connect and read get it too.
func (s *Server) serveLine(c net.Conn, port int) {
	defer c.Close()
	reply := []byte(s.reply(port, c.RemoteAddr()) + "\n")
	buf := make([]byte, 0, maxRequest)
	chunk := make([]byte, maxRequest)
	wait := readWait
	for {
		c.SetReadDeadline(time.Now().Add(wait))
		var err error
		for len(buf) < maxRequest && !bytes.Contains(buf, []byte{'\n'}) {
			var n int
			n, err = c.Read(chunk[:maxRequest-len(buf)])
			buf = append(buf, chunk[:n]...)
			if err != nil {
				break
			}
		}
		if err != nil && (wait == idleWait || len(buf) == 0 && !isTimeout(err)) {
			return // silent or gone after its first answer, or closed before asking
		}
		c.SetWriteDeadline(time.Now().Add(readWait))
		if _, werr := c.Write(reply); werr != nil || err != nil {
			return
		}
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = append(buf[:0], buf[i+1:]...)
		} else {
			buf = buf[:0]
		}
		wait = idleWait
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
