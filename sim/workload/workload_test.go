package workload

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestPortListsParseWithTCPAsTheDefault(t *testing.T) {
	got, err := ParsePorts("80/TCP, 81/udp,8080/TCP/http,90,7/SCTP")
	if err != nil {
		t.Fatal(err)
	}
	if s := FormatPorts(got); s != "80/TCP,81/UDP,8080/TCP/http,90/TCP,7/SCTP" {
		t.Errorf("round trip = %s", s)
	}
	for _, bad := range []string{"x", "70000", "80/ICMP", "81/UDP/http", "80/TCP/http/x"} {
		if _, err := ParsePorts(bad); err == nil {
			t.Errorf("ParsePorts(%q) accepted", bad)
		}
	}
}

func TestEachProtocolAnswersWithThePodAndPort(t *testing.T) {
	ports, _ := ParsePorts("0/TCP,0/UDP,0/TCP/http,0/SCTP")
	s, err := Start(Options{Pod: "ns/web", Ports: ports, Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	t.Run("TCP replies to a line", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", s.Addr(0).String(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "hello\n")
		got, err := bufio.NewReader(c).ReadString('\n')
		if want := fmt.Sprintf("ns/web %d 127.0.0.1\n", portOf(s.Addr(0))); err != nil || got != want {
			t.Errorf("got %q, %v; want %q", got, err, want)
		}
	})
	t.Run("TCP keeps a connection open and answers every line", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", s.Addr(0).String(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		want := fmt.Sprintf("ns/web %d 127.0.0.1\n", portOf(s.Addr(0)))
		fmt.Fprintf(c, "one\ntwo\n") // two lines in one segment: two answers
		for i := range 3 {
			if i == 2 {
				time.Sleep(1500 * time.Millisecond) // past the first-answer wait
				fmt.Fprintf(c, "three\n")
			}
			got, err := r.ReadString('\n')
			if err != nil || got != want {
				t.Fatalf("answer %d: got %q, %v; want %q", i+1, got, err, want)
			}
		}
	})
	t.Run("TCP replies to a silent client", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", s.Addr(0).String(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		got, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || got == "" {
			t.Errorf("got %q, %v", got, err)
		}
	})
	t.Run("UDP replies to a datagram", func(t *testing.T) {
		c, err := net.Dial("udp", s.Addr(1).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write([]byte("ping"))
		buf := make([]byte, 256)
		n, err := c.Read(buf)
		if want := fmt.Sprintf("ns/web %d 127.0.0.1", portOf(s.Addr(1))); err != nil || string(buf[:n]) != want {
			t.Errorf("got %q, %v; want %q", buf[:n], err, want)
		}
	})
	t.Run("HTTP answers JSON naming the request", func(t *testing.T) {
		resp, err := http.Post("http://"+s.Addr(2).String()+"/a/b", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r HTTPReply
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		want := HTTPReply{Pod: "ns/web", Port: portOf(s.Addr(2)), Method: "POST", Path: "/a/b", Client: "127.0.0.1"}
		if resp.StatusCode != 200 || r != want {
			t.Errorf("got %d %+v, want 200 %+v", resp.StatusCode, r, want)
		}
	})
	t.Run("SCTP is skipped", func(t *testing.T) {
		if s.Addr(3) != nil {
			t.Errorf("SCTP port bound at %v", s.Addr(3))
		}
	})
}

func TestAPortInUseFailsTheStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Start(Options{Pod: "a/b", Host: "127.0.0.1",
		Ports: []Port{{Number: 0, Protocol: "UDP"}, {Number: portOf(ln.Addr()), Protocol: "TCP"}}})
	if err == nil {
		t.Fatal("Start succeeded on a port in use")
	}
}
