package accept

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// A connection being served is closed when its listener is, and Serve
// returns nil; what serve reads comes from the accepted connection.
func TestClosingTheListenerEndsItsConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var l Loop
	got := make(chan string, 1)
	ended := make(chan error, 1)
	go func() {
		ended <- l.Serve(ln, func(c net.Conn) {
			b := make([]byte, 5)
			io.ReadFull(c, b)
			got <- string(b)
			io.Copy(io.Discard, c) // until the connection is closed
		})
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello"))
	if s := <-got; s != "hello" {
		t.Fatalf("served %q, want hello", s)
	}
	ln.Close()
	if err := <-ended; err != nil {
		t.Fatalf("Serve after its listener closed: %v, want nil", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the client's read after the listener closed: %v, want EOF (the proxy closed it)", err)
	}
}

func TestAddrPortUnmapsIPv4(t *testing.T) {
	mapped := &net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.1"), Port: 80}
	if got := AddrPort(mapped); got != netip.MustParseAddrPort("10.0.0.1:80") {
		t.Fatalf("AddrPort(%v) = %v", mapped, got)
	}
	if got := AddrPort(&net.UDPAddr{IP: net.ParseIP("10.0.0.1"), Port: 53}); got.IsValid() {
		t.Fatalf("a UDP address gave %v, want the zero AddrPort", got)
	}
}
