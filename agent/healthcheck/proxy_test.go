package healthcheck

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func probe(t *testing.T, h *ProxyHealth, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("%s headers: %v", path, rec.Header())
	}
	return rec.Code, rec.Body.String()
}

func expectCodes(t *testing.T, h *ProxyHealth, healthz, livez int) {
	t.Helper()
	if c, body := probe(t, h, "/healthz"); c != healthz || !strings.Contains(body, `"nodeEligible"`) {
		t.Fatalf("/healthz: %d %s, want %d", c, body, healthz)
	}
	if c, body := probe(t, h, "/livez"); c != livez || strings.Contains(body, "nodeEligible") || !strings.Contains(body, `"currentTime"`) {
		t.Fatalf("/livez: %d %s, want %d", c, body, livez)
	}
}

func TestProxyHealthFailsWhenAChangeWaitsTooLong(t *testing.T) {
	now := time.Unix(1000, 0)
	h := NewProxyHealth(60 * time.Second)
	h.now = func() time.Time { return now }
	expectCodes(t, h, http.StatusOK, http.StatusOK) // healthy while starting
	h.QueuedUpdate()
	now = now.Add(59 * time.Second)
	expectCodes(t, h, http.StatusOK, http.StatusOK) // waiting, not late yet
	h.QueuedUpdate()                                // a later change does not restart the wait
	now = now.Add(2 * time.Second)
	expectCodes(t, h, http.StatusServiceUnavailable, http.StatusServiceUnavailable)
	if h.Healthy() {
		t.Fatal("Healthy() disagrees with /livez")
	}
	h.Updated()
	expectCodes(t, h, http.StatusOK, http.StatusOK)
}

func TestProxyHealthzFailsOnANodeBeingRemoved(t *testing.T) {
	h := NewProxyHealth(time.Minute)
	tainted := &corev1.Node{Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "ToBeDeletedByClusterAutoscaler", Effect: corev1.TaintEffectNoSchedule}}}}
	h.SyncNode(tainted)
	expectCodes(t, h, http.StatusServiceUnavailable, http.StatusOK)
	if !h.Healthy() {
		t.Fatal("the node's eligibility must not fail service health checks' proxy health")
	}
	h.SyncNode(&corev1.Node{})
	expectCodes(t, h, http.StatusOK, http.StatusOK)
	ts := metav1.Now()
	h.SyncNode(&corev1.Node{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &ts}})
	expectCodes(t, h, http.StatusServiceUnavailable, http.StatusOK)
}
