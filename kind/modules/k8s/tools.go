//go:build tools

// Package kindk8s pins the Kubernetes commands a kind node runs that sim does not
// build (kubelet, kubeadm, kube-scheduler). Its own module, like sim's, so the
// Kubernetes dependency graph stays out of Kestrel's; kind/build-bins.sh builds it.
// The version must equal sim/controlplane/k8s/go.mod's (a test checks), so the
// control-plane binaries sim already built are reused.
package kindk8s

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
