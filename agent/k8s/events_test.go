package k8s

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// A health check port the node cannot open is recorded on its Service, as
// kube-proxy records it, with the node, the port and the cause.
func TestHealthCheckFailedIsAnEventOnTheService(t *testing.T) {
	cs := fake.NewSimpleClientset()
	r := &EventReporter{Client: cs, Node: "node-1", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	r.HealthCheckFailed(types.NamespacedName{Namespace: "shop", Name: "web"}, 31000, errors.New("address already in use"))
	var evs []corev1.Event
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		l, err := cs.CoreV1().Events("shop").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if evs = l.Items; len(evs) > 0 {
			break
		}
	}
	if len(evs) != 1 {
		t.Fatalf("want one event, got %v", evs)
	}
	ev := evs[0]
	if ev.Reason != "FailedToStartServiceHealthcheck" || ev.Type != corev1.EventTypeWarning ||
		ev.InvolvedObject.Kind != "Service" || ev.InvolvedObject.Namespace != "shop" || ev.InvolvedObject.Name != "web" {
		t.Fatalf("event %+v", ev)
	}
	for _, part := range []string{"node-1", `"shop/web"`, "31000", "address already in use"} {
		if !strings.Contains(ev.Message, part) {
			t.Fatalf("message %q lacks %q", ev.Message, part)
		}
	}
}
