// Package k8s watches the Kubernetes objects the agent's policy depends on:
// Pods, Namespaces, Nodes, NetworkPolicies, and Cilium's CNP and CCNP. Event
// handlers only note that something changed and how far the watch has come;
// the agent reads a consistent Snapshot of the caches when it regenerates.
package k8s
