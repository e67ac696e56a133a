package workload

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// One mux port answers TLS with any server name, HTTP, and the line
// protocol, each naming the client address it saw.
func TestAMuxPortAnswersTLSHTTPAndLines(t *testing.T) {
	s, err := Start(Options{Pod: "world:127.0.0.1", Host: "127.0.0.1", Ports: []Port{{Protocol: "TCP", Mux: true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := s.Addr(0).String()
	port := portOf(s.Addr(0))

	t.Run("line", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		fmt.Fprintf(c, "kestrel-probe\n")
		got, err := bufio.NewReader(c).ReadString('\n')
		if want := fmt.Sprintf("world:127.0.0.1 %d 127.0.0.1\n", port); err != nil || got != want {
			t.Errorf("got %q, %v; want %q", got, err, want)
		}
	})
	t.Run("silent client", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(4 * time.Second))
		got, err := bufio.NewReader(c).ReadString('\n')
		if want := fmt.Sprintf("world:127.0.0.1 %d 127.0.0.1\n", port); err != nil || got != want {
			t.Errorf("got %q, %v; want %q", got, err, want)
		}
	})
	get := func(t *testing.T, client *http.Client, url string) {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r HTTPReply
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		want := HTTPReply{Pod: "world:127.0.0.1", Port: port, Method: "GET", Path: "/x", Client: "127.0.0.1"}
		if resp.StatusCode != 200 || r != want {
			t.Errorf("got %d %+v, want 200 %+v", resp.StatusCode, r, want)
		}
	}
	t.Run("HTTP", func(t *testing.T) {
		get(t, &http.Client{Timeout: 3 * time.Second}, "http://"+addr+"/x")
	})
	t.Run("HTTPS with any server name", func(t *testing.T) {
		for _, name := range []string{"api.example.com", "other.test"} {
			tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: name, InsecureSkipVerify: true}}
			get(t, &http.Client{Timeout: 3 * time.Second, Transport: tr}, "https://"+addr+"/x")
			tr.CloseIdleConnections()
		}
	})
	t.Run("a line inside TLS", func(t *testing.T) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{ServerName: "x.test", InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		fmt.Fprintf(c, "hello\n")
		got, err := bufio.NewReader(c).ReadString('\n')
		if want := fmt.Sprintf("world:127.0.0.1 %d 127.0.0.1\n", port); err != nil || got != want {
			t.Errorf("got %q, %v; want %q", got, err, want)
		}
	})
}
