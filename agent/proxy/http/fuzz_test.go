package httpproxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/kestrelnet/kestrel/agent/policy"
)

// FuzzProxyForwardsOnlyAllowedRequests feeds arbitrary bytes to the proxy as
// a client's stream and checks, at the upstream server, that every request
// that got through is one the rules allow (GET /public): whatever the
// client sends, nothing else is forwarded.
func FuzzProxyForwardsOnlyAllowedRequests(f *testing.F) {
	for _, seed := range []string{
		"GET /public HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /public HTTP/1.1\r\nHost: a\r\n\r\nPOST /public HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"GET /public HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /private HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /public HTTP/1.1\r\nHost: a\r\nContent-Length: 30\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nDELETE /x HTTP/1.1\r\n\r\n",
		"GET http://evil/private HTTP/1.1\r\nHost: a\r\n\r\n",
		"get /public HTTP/1.0\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	m, err := Compile([]policy.HTTPRule{{Method: "GET", Path: "/public"}}, false)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var mu sync.Mutex
		var forwarded []string
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, s := net.Pipe()
			go func() {
				defer s.Close()
				r := bufio.NewReader(s)
				for {
					req, err := http.ReadRequest(r)
					if err != nil {
						return
					}
					mu.Lock()
					forwarded = append(forwarded, req.Method+" "+req.RequestURI)
					mu.Unlock()
					io.Copy(io.Discard, req.Body)
					io.WriteString(s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
			return c, nil
		}
		srv := &Server{Direction: policy.Ingress, Resolver: fixedResolver{&Connection{Matcher: m, Dial: dial}}}
		client, proxySide := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.serveConn(proxySide)
			proxySide.Close()
		}()
		go io.Copy(io.Discard, client)
		client.SetWriteDeadline(time.Now().Add(time.Second))
		client.Write(in)
		client.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, r := range forwarded {
			if r != "GET /public" {
				t.Fatalf("forwarded %q, which the rules deny (input %q)", r, in)
			}
		}
	})
}
