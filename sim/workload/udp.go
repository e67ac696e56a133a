package workload

import (
	"errors"
	"net"
)

func (s *Server) startUDP(i int, addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, pc)
	s.addrs[i] = pc.LocalAddr()
	port := portOf(pc.LocalAddr())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 64*1024)
		for {
			_, from, err := pc.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			pc.WriteTo([]byte(s.reply(port, from)), from)
		}
	}()
	return nil
}
