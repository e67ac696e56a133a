package workload

import (
	"net"
	"strings"
	"testing"
	"time"
)

// A batch runs in the calling process (no namespace to enter) and keeps the
// order of its requests, whatever finishes first.
func TestConnectAllAnswersEachRequestInOrder(t *testing.T) {
	ports, _ := ParsePorts("0/TCP,0/UDP")
	s, err := Start(Options{Pod: "x/a", Ports: ports, Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A port nobody listens on: bind one, note it, close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	got := ConnectAll([]ConnectRequest{
		{Protocol: "tcp", Target: closed, Msg: "kestrel-probe\n", Timeout: time.Second},
		{Protocol: "tcp", Target: s.Addr(0).String(), Msg: "kestrel-probe\n", Timeout: time.Second},
		{Protocol: "udp", Target: s.Addr(1).String(), Msg: "kestrel-probe\n", Timeout: time.Second},
	})
	if len(got) != 3 {
		t.Fatalf("%d results for 3 requests", len(got))
	}
	if !got[0].Refused || got[0].Answer != "" {
		t.Errorf("closed port: %+v, want refused", got[0])
	}
	for i, proto := range []string{"TCP", "UDP"} {
		r := got[i+1]
		if r.Err != "" || !strings.HasPrefix(r.Answer, "x/a ") {
			t.Errorf("%s to the server: %+v, want an answer from x/a", proto, r)
		}
	}
}
