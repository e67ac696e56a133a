package workload

import (
	"net/http"
	"path"
	"strings"
)

// Server kinds a pod's HTTP ports can act as (Options.Server).
const (
	// ServerEcho answers every request 200 with JSON naming the pod.
	ServerEcho = ""
	// ServerJSONMock answers as the echo server of `cilium connectivity
	// test` (its json-mock image): GET 200, POST 201, and
	// /auth-header-required 401 unless the request carries
	// AuthRequiredHeader.
	ServerJSONMock = "json-mock"
)

// AuthRequiredHeader is the Authorization value json-mock's
// /auth-header-required wants (the value of the Secret cilium connectivity
// test's headerMatches policy injects).
const AuthRequiredHeader = "Bearer 123456"

// ServerOfImage is the server kind a container image asks for: an image
// named json-mock (quay.io/cilium/json-mock:v1.3.8, kestrel.dev/json-mock)
// is json-mock, anything else the echo.
func ServerOfImage(image string) string {
	name := path.Base(image)
	if i := strings.IndexAny(name, ":@"); i >= 0 {
		name = name[:i]
	}
	if name == ServerJSONMock {
		return ServerJSONMock
	}
	return ServerEcho
}

// Status is the status a server of kind server answers a request with; the
// unit-mode scenario runner, which has no server, takes the same answer
// from here. authorization is the request's Authorization header.
func Status(server, method, urlPath, authorization string) int {
	if server != ServerJSONMock {
		return http.StatusOK
	}
	if urlPath == "/auth-header-required" && authorization != AuthRequiredHeader {
		return http.StatusUnauthorized
	}
	if method == http.MethodPost {
		return http.StatusCreated
	}
	return http.StatusOK
}
