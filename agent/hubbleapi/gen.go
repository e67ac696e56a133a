// Package hubbleapi holds Go generated from Cilium's Hubble protobuf
// definitions (proto/, Cilium v1.20.2, Apache-2.0, unmodified): the flow
// model and the Observer service the hubble CLI and hubble-relay speak.
// The proto packages keep Cilium's names (flow, observer, relay), so the
// wire format and the gRPC service name are Hubble's; only the Go import
// paths are Kestrel's, because importing Cilium's own Go packages would move
// Kestrel's Kubernetes pins (github.com/cilium/cilium requires client-go
// v0.36).
//
// Regenerate with `go generate ./agent/hubbleapi/` (protoc from Debian's
// protobuf-compiler; the plugins are go.mod tools). CI checks the output is
// current.
package hubbleapi

//go:generate sh gen.sh
