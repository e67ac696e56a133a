package workload

import (
	"encoding/json"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// HTTPReply is the JSON body every HTTP request gets.
type HTTPReply struct {
	Pod    string `json:"pod"`
	Port   int    `json:"port"`
	Method string `json:"method"`
	Path   string `json:"path"`
	Client string `json:"client"` // the client address the server saw
}

func (s *Server) startHTTP(i int, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.addrs[i] = ln.Addr()
	port := portOf(ln.Addr())
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		// Cleartext HTTP/2 too (prior knowledge), as a gRPC server speaks it.
		Handler: h2c.NewHandler(s.httpHandler(port), &http2.Server{}),
	}
	s.closers = append(s.closers, srv)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		srv.Serve(ln)
	}()
	return nil
}

// httpHandler answers every request with JSON naming the server, the request
// and the client address.
func (s *Server) httpHandler(port int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := r.RemoteAddr
		if host, _, err := net.SplitHostPort(client); err == nil {
			client = host
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(Status(s.opts.Server, r.Method, r.URL.Path, r.Header.Get("Authorization")))
		json.NewEncoder(w).Encode(HTTPReply{Pod: s.opts.Pod, Port: port, Method: r.Method, Path: r.URL.Path, Client: client})
	})
}
