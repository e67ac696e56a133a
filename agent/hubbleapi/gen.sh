#!/bin/sh
# Generates Go for Cilium's Hubble protos into flow/, observer/ and relay/.
# The M options give each proto file Kestrel's import path in place of the
# go_package Cilium's files name.
set -eu
cd "$(dirname "$0")"
P=github.com/kestrelnet/kestrel/agent/hubbleapi
M="Mflow/flow.proto=$P/flow,Mobserver/observer.proto=$P/observer,Mrelay/relay.proto=$P/relay"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
go build -o "$tmp/protoc-gen-go-grpc" google.golang.org/grpc/cmd/protoc-gen-go-grpc
protoc -I proto \
	--plugin=protoc-gen-go="$tmp/protoc-gen-go" --plugin=protoc-gen-go-grpc="$tmp/protoc-gen-go-grpc" \
	--go_out="$tmp" --go_opt="$M" \
	--go-grpc_out="$tmp" --go-grpc_opt="$M" \
	flow/flow.proto relay/relay.proto observer/observer.proto
for d in flow observer relay; do
	rm -f "$d"/*.pb.go
	mkdir -p "$d"
	cp "$tmp/$P/$d"/*.pb.go "$d/"
done
