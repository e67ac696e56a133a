package workload

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"sync"
	"time"
)

// tlsRecordHandshake is the first byte of a TLS ClientHello record.
const tlsRecordHandshake = 0x16

// httpMethods are the request lines the mux serves as HTTP.
var httpMethods = [][]byte{
	[]byte("GET "), []byte("HEAD "), []byte("POST "), []byte("PUT "), []byte("DELETE "),
	[]byte("OPTIONS "), []byte("PATCH "), []byte("CONNECT "), []byte("TRACE "),
}

// startMux serves one TCP port that answers TLS, HTTP and the line protocol:
// a ClientHello gets a TLS handshake (any server name, a self-signed
// certificate) and then the same choice inside; a request line gets one
// HTTP answer; anything else, or silence, gets the line protocol.
func (s *Server) startMux(i int, addr string) error {
	return s.acceptTCP(i, addr, func(c net.Conn, port int) { s.serveMux(c, port, true) })
}

func (s *Server) serveMux(c net.Conn, port int, outer bool) {
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(readWait))
	head, _ := r.Peek(8) // fewer bytes, or none, when the client stays silent
	c.SetReadDeadline(time.Time{})
	conn := &peekedConn{Conn: c, r: r}
	switch {
	case outer && len(head) > 0 && head[0] == tlsRecordHandshake:
		cert, err := selfSigned()
		if err != nil {
			c.Close()
			return
		}
		tc := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{cert}})
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			tc.Close()
			return
		}
		tc.SetDeadline(time.Time{})
		s.serveMux(tc, port, false)
	case isHTTP(head):
		s.serveOneHTTP(conn, port)
	default:
		s.serveLine(conn, port)
	}
}

func isHTTP(head []byte) bool {
	for _, m := range httpMethods {
		if bytes.HasPrefix(head, m) {
			return true
		}
	}
	return false
}

// serveOneHTTP answers the HTTP requests of one connection with the same
// handler as the HTTP ports.
func (s *Server) serveOneHTTP(c net.Conn, port int) {
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: s.httpHandler(port)}
	srv.Serve(&oneConnListener{c: c, done: make(chan struct{})})
}

// peekedConn is a connection whose first bytes were read into r.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// oneConnListener hands one connection to http.Server, then blocks until
// that connection is closed, so Serve returns when the client is done.
type oneConnListener struct {
	c    net.Conn
	once sync.Once
	done chan struct{}
	used bool
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if !l.used {
		l.used = true
		return &closeNotifier{Conn: l.c, l: l}, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *oneConnListener) Addr() net.Addr { return l.c.LocalAddr() }

type closeNotifier struct {
	net.Conn
	l *oneConnListener
}

func (c *closeNotifier) Close() error {
	err := c.Conn.Close()
	c.l.Close()
	return err
}

// selfSigned is the certificate of every TLS port of this process, made on
// first use: clients of the servers outside the cluster do not verify it.
var selfSigned = sync.OnceValues(func() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "kestrel sim world"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"*"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
})
