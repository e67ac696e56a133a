package simbench

import (
	"bufio"
	"net"
	"net/netip"
	"testing"
)

// connectTimes and whoAnswers from inside a namespace (here our own) reach
// a server there: one connect per time, and the server's line back.
func TestConnectsFromInsideANamespace(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				accepted <- struct{}{}
				if line, err := bufio.NewReader(c).ReadString('\n'); err == nil && line == "who\n" {
					c.Write([]byte("bench/echo-3 8080\n"))
				}
			}()
		}
	}()
	dst := netip.MustParseAddrPort(ln.Addr().String())
	times, err := connectTimes("/proc/self/ns/net", dst, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(times) != 5 {
		t.Fatalf("%d times, want 5", len(times))
	}
	for _, d := range times {
		if d <= 0 {
			t.Fatalf("times %v", times)
		}
	}
	var got string
	if err := inNetns("/proc/self/ns/net", func() (err error) { got, err = whoAnswers(dst); return err }); err != nil {
		t.Fatal(err)
	}
	if got != "bench/echo-3 8080" {
		t.Fatalf("answer %q", got)
	}
	// Nothing listens on a closed port: the connect fails, named.
	ln2, _ := net.Listen("tcp4", "127.0.0.1:0")
	closed := netip.MustParseAddrPort(ln2.Addr().String())
	ln2.Close()
	if _, err := connectTimes("/proc/self/ns/net", closed, 1); err == nil {
		t.Fatal("connect to a closed port succeeded")
	}
}
