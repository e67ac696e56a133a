package workload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
)

// Options configure the servers of one pod.
type Options struct {
	Pod   string // "namespace/name", put in every reply
	Ports []Port
	Host  string // address to bind; empty means every address
	Log   *slog.Logger
	// Server is what the HTTP ports answer as: ServerEcho or ServerJSONMock.
	Server string
}

// Server holds the listeners of one pod's ports.
type Server struct {
	opts    Options
	closers []io.Closer
	addrs   []net.Addr // bound address per port, nil for skipped ones
	wg      sync.WaitGroup
}

// Start binds every port and serves them until Close. A port that cannot be
// bound fails the whole start, so a half-serving pod never looks ready.
func Start(opts Options) (*Server, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	s := &Server{opts: opts, addrs: make([]net.Addr, len(opts.Ports))}
	for i, p := range opts.Ports {
		addr := net.JoinHostPort(opts.Host, strconv.Itoa(p.Number))
		var err error
		switch {
		case p.Protocol == "SCTP":
			opts.Log.Info("skipping SCTP port: this kernel has no SCTP", "pod", opts.Pod, "port", p.Number)
			continue
		case p.Protocol == "UDP":
			err = s.startUDP(i, addr)
		case p.Mux:
			err = s.startMux(i, addr)
		case p.HTTP:
			err = s.startHTTP(i, addr)
		case p.Kafka:
			err = s.startKafka(i, addr)
		default:
			err = s.startTCP(i, addr)
		}
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("serve %s: %w", p, err)
		}
		opts.Log.Info("serving", "pod", opts.Pod, "port", p.String(), "addr", s.addrs[i].String())
	}
	return s, nil
}

// Addr is where port i (in Options.Ports order) is bound; nil if skipped.
func (s *Server) Addr(i int) net.Addr { return s.addrs[i] }

// Close stops every server and waits for their loops to end.
func (s *Server) Close() error {
	var errs []error
	for _, c := range s.closers {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

// Run serves until ctx ends.
func Run(ctx context.Context, opts Options) error {
	s, err := Start(opts)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}

// reply is what every protocol answers with: who, which port, and the
// client address the server saw (what source NAT made of the client).
func (s *Server) reply(port int, client net.Addr) string {
	return s.opts.Pod + " " + strconv.Itoa(port) + " " + hostOf(client)
}

// hostOf is the address of a TCP or UDP peer, without its port.
func hostOf(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap().String()
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap().String()
	}
	if a == nil {
		return "-"
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

func portOf(a net.Addr) int {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.Port
	case *net.UDPAddr:
		return a.Port
	}
	return 0
}
