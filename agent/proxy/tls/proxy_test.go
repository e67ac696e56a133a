package tlsproxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/agent/proxy"
)

// crypto/tls's parser gives the SNI of a real client's ClientHello; a
// client without one (an IP address), and bytes that are not TLS, are told
// apart.
func TestReadClientHelloTakesTheServerName(t *testing.T) {
	hello := func(name string) []byte {
		a, b := net.Pipe()
		go func() {
			tls.Client(a, &tls.Config{ServerName: name, InsecureSkipVerify: true}).Handshake()
			a.Close()
		}()
		b.SetReadDeadline(time.Now().Add(5 * time.Second))
		var buf [16 << 10]byte
		n, _ := b.Read(buf[:])
		b.Close()
		return buf[:n]
	}
	for _, name := range []string{"one.one.one.one", "a.b.cilium.io"} {
		raw := hello(name)
		got, read, ok := ReadClientHello(&chunked{b: raw})
		if !ok || got != name || string(read) != string(raw) {
			t.Errorf("hello for %q: got %q ok %v, read %d of %d bytes", name, got, ok, len(read), len(raw))
		}
	}
	if got, _, ok := ReadClientHello(&chunked{b: hello("192.0.2.1")}); !ok || got != "" {
		t.Errorf("a hello to an IP: server name %q ok %v, want none", got, ok)
	}
	for _, junk := range []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "\x16\x03\x01\x00\x05hello", ""} {
		if got, _, ok := ReadClientHello(&chunked{b: []byte(junk)}); ok {
			t.Errorf("%q read as a ClientHello for %q", junk, got)
		}
	}
}

// chunked hands out its bytes a few at a time, as TCP may.
type chunked struct{ b []byte }

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), 7, len(c.b))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

type fixed struct{ r *proxy.Resolved }

func (f fixed) ResolveEntry(policy.Direction, netip.AddrPort, netip.AddrPort) (*proxy.Resolved, error) {
	return f.r, nil
}

// Through the proxy, a handshake whose SNI the entry allows completes with
// the real server (the proxy never terminates it); any other SNI, none, or
// no TLS at all is aborted before anything reaches the server.
func TestTLSProxyAllowsOnlyMatchingServerNames(t *testing.T) {
	srvLn, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer srvLn.Close()
	var mu sync.Mutex
	var served []string
	go func() {
		for {
			c, err := srvLn.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				if tc.Handshake() != nil {
					return
				}
				mu.Lock()
				served = append(served, tc.ConnectionState().ServerName)
				mu.Unlock()
				io.WriteString(c, "hello from the server\n")
			}()
		}
	}()
	pxLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pxLn.Close()
	var recs []Record
	s := &Server{Direction: policy.Egress, Observe: func(r Record) { mu.Lock(); recs = append(recs, r); mu.Unlock() },
		Resolver: fixed{&proxy.Resolved{
			Entry: policy.Entry{ProxyPort: policy.ProxyPortTLSEgress, ServerNames: []string{"one.one.one.one", "*.cilium.io"}},
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, srvLn.Addr().String())
			}}}}
	go s.Serve(pxLn)

	try := func(name string) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", pxLn.Addr().String(),
			&tls.Config{ServerName: name, InsecureSkipVerify: true})
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(c)
		return err
	}
	for _, name := range []string{"one.one.one.one", "docs.cilium.io"} {
		if err := try(name); err != nil {
			t.Errorf("SNI %s: %v, want the server's handshake", name, err)
		}
	}
	for _, name := range []string{"two.one.one.one", "a.docs.cilium.io", "cilium.io", "127.0.0.1"} {
		if err := try(name); err == nil {
			t.Errorf("SNI %q: the handshake completed, want it aborted", name)
		}
	}
	c, err := net.Dial("tcp", pxLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: one.one.one.one\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Errorf("plain HTTP got %q through a serverNames port", b)
	}
	c.Close()

	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(recs)
		mu.Unlock()
		if n >= 7 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(served) != 2 || served[0] != "one.one.one.one" || served[1] != "docs.cilium.io" {
		t.Errorf("the server saw handshakes for %q, want only the two allowed names", served)
	}
	allowed := 0
	for _, r := range recs {
		if r.Allowed {
			allowed++
		}
	}
	if len(recs) != 7 || allowed != 2 || !recs[6].NotTLS {
		t.Errorf("decisions: %v", recs)
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"*"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
