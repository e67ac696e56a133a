package workload

import (
	"net/http"
	"strings"
	"testing"
)

// json-mock answers as cilium connectivity test's echo does; the plain echo
// is unchanged, so only a pod that asks for json-mock gets its 401.
func TestJSONMockAnswersAsCiliumsEchoServer(t *testing.T) {
	s, err := Start(Options{Pod: "ns/echo", Host: "127.0.0.1", Ports: []Port{{Protocol: "TCP", HTTP: true}}, Server: ServerJSONMock})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	echo, err := Start(Options{Pod: "ns/plain", Host: "127.0.0.1", Ports: []Port{{Protocol: "TCP", HTTP: true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	do := func(addr, method, path, auth string) int {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(""))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	mock := s.Addr(0).String()
	for _, c := range []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/", "", 200},
		{"GET", "/public", "", 200},
		{"POST", "/", "", 201},
		{"POST", "/auth-header-required", "", 401},
		{"POST", "/auth-header-required", "Bearer 12345", 401},
		{"POST", "/auth-header-required", "bearer 123456", 401},
		{"POST", "/auth-header-required", "Bearer 123456", 201},
		{"GET", "/auth-header-required", "Bearer 123456", 200},
		{"GET", "/auth-header-required/x", "", 200},
	} {
		if got := do(mock, c.method, c.path, c.auth); got != c.want {
			t.Errorf("json-mock %s %s (Authorization %q) = %d, want %d", c.method, c.path, c.auth, got, c.want)
		}
		if got := Status(ServerJSONMock, c.method, c.path, c.auth); got != c.want {
			t.Errorf("Status(json-mock, %s %s, %q) = %d, want %d (unit mode would disagree with the server)", c.method, c.path, c.auth, got, c.want)
		}
	}
	if got := do(echo.Addr(0).String(), "POST", "/auth-header-required", ""); got != 200 {
		t.Errorf("the echo answered %d to POST /auth-header-required, want 200", got)
	}
}

func TestTheImageNamesTheServer(t *testing.T) {
	for img, want := range map[string]string{
		"quay.io/cilium/json-mock:v1.3.8@sha256:5aad04835eda9025fe4561ad31be77fd55309af8158ca8663a72f6abb78c2603": ServerJSONMock,
		"kestrel.dev/json-mock": ServerJSONMock,
		"json-mock":             ServerJSONMock,
		"kestrel.dev/echo":      ServerEcho,
		"example/json-mock-two": ServerEcho,
		"json-mock/echo":        ServerEcho,
		"":                      ServerEcho,
	} {
		if got := ServerOfImage(img); got != want {
			t.Errorf("ServerOfImage(%q) = %q, want %q", img, got, want)
		}
	}
}
