package k8s

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kestrelnet/kestrel/agent/policy"
)

// EventReporter records a Warning Event on each rejected policy, so the
// person who applied it sees why with `kubectl describe`.
type EventReporter struct {
	Client kubernetes.Interface
	Node   string
	Log    *slog.Logger
}

// PolicyRejected creates the Event in the background: reporting must not
// hold up the regeneration that found the problem.
func (r *EventReporter) PolicyRejected(p PolicyObject) {
	r.policyEvent(p, "PolicyRejected", fmt.Sprintf("kestrel-agent on %s ignores this policy: %v", r.Node, p.Err))
}

// PolicyWarned records a Warning Event naming what of an accepted policy is
// not enforced as written and what happens instead (an l7proto port drops
// as PROXY_UNAVAILABLE), as PolicyRejected does.
func (r *EventReporter) PolicyWarned(p PolicyObject, warnings []string) {
	r.policyEvent(p, "PolicyNotEnforcedAsWritten", fmt.Sprintf("kestrel-agent on %s: %s", r.Node, strings.Join(warnings, "; ")))
}

func (r *EventReporter) policyEvent(p PolicyObject, reason, message string) {
	ns := p.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault // cluster-scoped objects' events live here, as kubectl looks for them
	}
	apiVersion := "cilium.io/v2"
	if p.Kind == policy.KindNetworkPolicy {
		apiVersion = "networking.k8s.io/v1"
	}
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: p.Name + ".", Namespace: ns},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: apiVersion, Kind: p.Kind, Namespace: p.Namespace, Name: p.Name,
			UID: p.UID, ResourceVersion: p.ResourceVersion,
		},
		Reason:         reason,
		Message:        message,
		Type:           corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: "kestrel-agent", Host: r.Node},
		FirstTimestamp: now,
		LastTimestamp:  now,
		Count:          1,
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := r.Client.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			r.Log.Warn("could not record an event for a policy", "reason", reason, "kind", p.Kind, "namespace", p.Namespace, "name", p.Name, "err", err)
		}
	}()
}

// HealthCheckFailed records, on the Service, that this node cannot serve its
// healthCheckNodePort (kube-proxy's FailedToStartServiceHealthcheck), in the
// background as PolicyRejected does.
func (r *EventReporter) HealthCheckFailed(svc types.NamespacedName, port uint16, err error) {
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: svc.Name + ".", Namespace: svc.Namespace},
		InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "Service", Namespace: svc.Namespace, Name: svc.Name},
		Reason:         "FailedToStartServiceHealthcheck",
		Message:        fmt.Sprintf("node %s failed to start healthcheck %q on port %d: %v", r.Node, svc.String(), port, err),
		Type:           corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: "kestrel-agent", Host: r.Node},
		FirstTimestamp: now,
		LastTimestamp:  now,
		Count:          1,
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := r.Client.CoreV1().Events(svc.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			r.Log.Warn("could not record an event for a health check port", "service", svc.String(), "err", err)
		}
	}()
}
