package simbench

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// Steady-state modes: the first byte a client sends names one.
const (
	// ModePingPong: 1-byte request, 1-byte response, one at a time.
	ModePingPong = "pingpong"
	// ModeStream: one stream of bulk data to the server, which answers
	// with the byte count once the client has closed its side.
	ModeStream = "stream"
)

// SteadyResult is what one steady-state client run measured.
type SteadyResult struct {
	Mode string `json:"mode"`
	// Rate is exchanges per second (pingpong) or bits per second (stream).
	Rate    float64 `json:"rate"`
	Seconds float64 `json:"seconds"`
}

// SteadyClient measures one connection to target for about d, from the
// namespace (and cgroup) the calling process is in; `kestrel bench
// steady-client` runs it as a process of a pod.
func SteadyClient(target, mode string, d time.Duration) (SteadyResult, error) {
	c, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		return SteadyResult{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d + 10*time.Second))
	switch mode {
	case ModePingPong:
		if _, err := c.Write([]byte{'P'}); err != nil {
			return SteadyResult{}, err
		}
		b := []byte{0}
		n := 0
		start := time.Now()
		for time.Since(start) < d {
			if _, err := c.Write(b); err != nil {
				return SteadyResult{}, err
			}
			if _, err := io.ReadFull(c, b); err != nil {
				return SteadyResult{}, fmt.Errorf("after %d exchanges: %w", n, err)
			}
			n++
		}
		took := time.Since(start).Seconds()
		return SteadyResult{Mode: mode, Rate: float64(n) / took, Seconds: took}, nil
	case ModeStream:
		if _, err := c.Write([]byte{'S'}); err != nil {
			return SteadyResult{}, err
		}
		buf := make([]byte, 128<<10)
		start := time.Now()
		for time.Since(start) < d {
			if _, err := c.Write(buf); err != nil {
				return SteadyResult{}, err
			}
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			return SteadyResult{}, err
		}
		// The server's count, sent once it has read everything: the time
		// is the data's arrival, not its queueing in the socket buffers.
		var total [8]byte
		if _, err := io.ReadFull(c, total[:]); err != nil {
			return SteadyResult{}, fmt.Errorf("the server's count: %w", err)
		}
		took := time.Since(start).Seconds()
		return SteadyResult{Mode: mode, Rate: float64(binary.BigEndian.Uint64(total[:])) * 8 / took, Seconds: took}, nil
	}
	return SteadyResult{}, fmt.Errorf("mode %q: want %s or %s", mode, ModePingPong, ModeStream)
}

// serveSteady answers steady-state clients on l until it is closed.
func serveSteady(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			mode := []byte{0}
			if _, err := io.ReadFull(c, mode); err != nil {
				return
			}
			switch mode[0] {
			case 'P':
				b := []byte{0}
				for {
					if _, err := io.ReadFull(c, b); err != nil {
						return
					}
					if _, err := c.Write(b); err != nil {
						return
					}
				}
			case 'S':
				n, err := io.Copy(io.Discard, c)
				if err != nil {
					return
				}
				var total [8]byte
				binary.BigEndian.PutUint64(total[:], uint64(n))
				c.Write(total[:])
			default:
				// `kestrel sim connect` (the bench's connect probes, and its
				// wait for the service) sends a line after each connect and
				// wants an answer before it resets the connection.
				c.Write([]byte("steady\n"))
			}
		}()
	}
}
