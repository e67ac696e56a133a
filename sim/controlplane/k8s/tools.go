//go:build tools

// Package k8sbuild pins the upstream Kubernetes commands that sim runs. It is its own
// module, kept out of Kestrel's, so the Kubernetes dependency graph never leaks into
// it; build-k8s.sh builds it into ~/.cache/kestrel/k8s-<version>/bin/.
package k8sbuild

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
