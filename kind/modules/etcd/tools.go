//go:build tools

// Package kindetcd pins etcd at the version kubeadm v1.31 expects (3.5.15; its image
// tag is 3.5.15-0). Its own module so etcd's dependency graph stays out of Kestrel's;
// kind/build-bins.sh builds the etcd server command from it.
package kindetcd

import (
	_ "go.etcd.io/etcd/server/v3"
)
