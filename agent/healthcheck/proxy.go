package healthcheck

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// toBeDeletedTaint is the Cluster Autoscaler's mark on a node it is about to
// remove: kube-proxy's /healthz then fails, so load balancers drain the node.
const toBeDeletedTaint = "ToBeDeletedByClusterAutoscaler"

// ProxyHealth is kube-proxy's proxier health: the agent is healthy while no
// change has waited longer than the timeout for the datapath to take it.
// /livez says only that; /healthz also fails while the node is being
// deleted or drained by the autoscaler.
type ProxyHealth struct {
	timeout time.Duration
	now     func() time.Time

	mu            sync.Mutex
	lastUpdated   time.Time
	oldestPending time.Time // zero: nothing waits
	nodeEligible  bool
}

// NewProxyHealth returns a health that is healthy until a change waits
// longer than timeout (kube-proxy: twice its sync period, 60 s by default).
func NewProxyHealth(timeout time.Duration) *ProxyHealth {
	return &ProxyHealth{timeout: timeout, now: time.Now, nodeEligible: true}
}

// QueuedUpdate records that a change is waiting for the datapath.
func (h *ProxyHealth) QueuedUpdate() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.oldestPending.IsZero() {
		h.oldestPending = h.now()
	}
}

// Updated records that the datapath holds every change queued so far.
func (h *ProxyHealth) Updated() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.oldestPending = time.Time{}
	h.lastUpdated = h.now()
}

// SyncNode reads this node's object: a node being deleted, or tainted for
// deletion by the autoscaler, is not eligible for load-balanced traffic.
func (h *ProxyHealth) SyncNode(n *corev1.Node) {
	eligible := n == nil || n.DeletionTimestamp == nil
	if n != nil {
		for _, t := range n.Spec.Taints {
			if t.Key == toBeDeletedTaint {
				eligible = false
			}
		}
	}
	h.mu.Lock()
	h.nodeEligible = eligible
	h.mu.Unlock()
}

// Healthy reports whether no change has waited past the timeout; it ignores
// the node's eligibility (a service health check asks only this).
func (h *ProxyHealth) Healthy() bool {
	ok, _, _ := h.state()
	return ok
}

func (h *ProxyHealth) state() (healthy bool, lastUpdated time.Time, eligible bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	healthy = h.oldestPending.IsZero() || h.now().Sub(h.oldestPending) < h.timeout
	return healthy, h.lastUpdated, h.nodeEligible
}

// Handler serves /healthz and /livez as kube-proxy's health server does.
func (h *ProxyHealth) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { h.serve(w, true) })
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { h.serve(w, false) })
	return mux
}

func (h *ProxyHealth) serve(w http.ResponseWriter, withNode bool) {
	healthy, last, eligible := h.state()
	now := h.now()
	if withNode {
		healthy = healthy && eligible
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if healthy {
		// As kube-proxy: a healthy answer's lastUpdated is now, as it was
		// when the sync loop ran even without changes.
		last = now
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if withNode {
		fmt.Fprintf(w, `{"lastUpdated": %q,"currentTime": %q, "nodeEligible": %v}`, last.Round(0), now.Round(0), eligible)
		return
	}
	fmt.Fprintf(w, `{"lastUpdated": %q,"currentTime": %q}`, last.Round(0), now.Round(0))
}
