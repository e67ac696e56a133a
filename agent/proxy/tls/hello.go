// Package tlsproxy is the node's transparent TLS proxy for serverNames
// rules: it reads the client's ClientHello with crypto/tls (never
// terminating TLS), allows the connection when its server name (SNI)
// matches the redirecting entry's serverNames, and then relays the
// untouched byte stream to the original destination; a denied handshake is
// aborted.
package tlsproxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"
)

// errHelloRead stops crypto/tls's server handshake once it has parsed the
// ClientHello: Kestrel only reads it.
var errHelloRead = errors.New("ClientHello read")

// helloConn feeds crypto/tls the client's bytes, keeping a copy to replay
// upstream, and swallows everything the handshake would write (its alert):
// the client must see nothing of this proxy's TLS stack.
type helloConn struct {
	net.Conn
	r    io.Reader
	seen bytes.Buffer
}

func (c *helloConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.seen.Write(p[:n])
	return n, err
}

func (c *helloConn) Write(p []byte) (int, error) { return len(p), nil }

// Deadlines are the caller's, on the real connection.
func (c *helloConn) SetDeadline(time.Time) error      { return nil }
func (c *helloConn) SetReadDeadline(time.Time) error  { return nil }
func (c *helloConn) SetWriteDeadline(time.Time) error { return nil }
func (c *helloConn) Close() error                     { return nil }

// ReadClientHello reads a TLS ClientHello from r with crypto/tls's own
// parser and returns its server name (empty when the client sent none),
// and every byte it read (to replay upstream). ok is false when the bytes
// are no ClientHello crypto/tls accepts (not TLS, malformed, truncated).
func ReadClientHello(r io.Reader) (serverName string, read []byte, ok bool) {
	hc := &helloConn{r: r}
	var got bool
	cfg := &tls.Config{GetConfigForClient: func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
		serverName, got = chi.ServerName, true
		return nil, errHelloRead
	}}
	_ = tls.Server(hc, cfg).Handshake() // ends with errHelloRead once the hello is parsed
	return serverName, hc.seen.Bytes(), got
}
