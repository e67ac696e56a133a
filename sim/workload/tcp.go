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
			go s.serveLine(c, port)
		}
	}()
	return nil
}

// serveLine reads one line (or 1 KiB, or until the client is silent or
// half-closes) and answers "<pod> <port>\n".
func (s *Server) serveLine(c net.Conn, port int) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(readWait))
	buf := make([]byte, 0, maxRequest)
	chunk := make([]byte, maxRequest)
	for len(buf) < maxRequest && !bytes.Contains(buf, []byte{'\n'}) {
		n, err := c.Read(chunk[:maxRequest-len(buf)])
		buf = append(buf, chunk[:n]...)
		if err != nil {
			break
		}
	}
	c.SetWriteDeadline(time.Now().Add(readWait))
	c.Write([]byte(s.reply(port) + "\n"))
}
