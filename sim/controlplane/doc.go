// Package controlplane runs the Kubernetes control plane of a sim cluster as plain
// processes: Debian's etcd, and kube-apiserver and kube-controller-manager built from
// the upstream k8s.io/kubernetes module at KubernetesVersion (build-k8s.sh, run by
// `make deps`, pins it with every staging module in k8s/go.mod).
//
// Everything lives in the cluster's state dir (see sim/README.md): keys and the
// static admin token in pki/, etcd data in etcd/, pid files in pids/, logs in logs/,
// the admin kubeconfig in kubeconfig. The processes are detached, so the cluster
// outlives the command that started it, and Stop and Status need only the state dir.
package controlplane
