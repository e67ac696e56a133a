package scheduler

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func node(name string, ready bool, lbls map[string]string) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}},
	}
}

func pod(name string, sel map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{NodeSelector: sel},
	}
}

func TestPickSpreadsRoundRobinOverReadyMatchingNodes(t *testing.T) {
	nodes := []*corev1.Node{
		node("node-2", true, map[string]string{"zone": "b"}),
		node("node-1", true, map[string]string{"zone": "a"}),
		node("node-3", false, map[string]string{"zone": "a"}),
	}
	var p picker
	var got []string
	for range 4 {
		n, err := p.pick(pod("x", nil), nodes)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	if strings.Join(got, ",") != "node-1,node-2,node-1,node-2" {
		t.Errorf("round robin = %v", got)
	}
	if n, err := p.pick(pod("x", map[string]string{"zone": "a"}), nodes); err != nil || n != "node-1" {
		t.Errorf("nodeSelector zone=a picked %q, %v", n, err)
	}
	_, err := p.pick(pod("x", map[string]string{"zone": "c"}), nodes)
	if err == nil || !strings.Contains(err.Error(), "1 not ready") || !strings.Contains(err.Error(), "2 do not match") {
		t.Errorf("no-fit error = %v", err)
	}
}

func TestRunBindsUnscheduledPodsAndLeavesOthersAlone(t *testing.T) {
	bound := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bound", Namespace: "ns"}, Spec: corev1.PodSpec{NodeName: "node-2"}}
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "ns"}, Spec: corev1.PodSpec{SchedulerName: "custom"}}
	client := fake.NewSimpleClientset(node("node-1", true, nil), node("node-2", true, map[string]string{"disk": "ssd"}),
		pod("a", nil), pod("b", map[string]string{"disk": "ssd"}), bound, other)

	var mu sync.Mutex
	bindings := map[string]string{}
	client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ca := a.(k8stesting.CreateAction)
		if ca.GetSubresource() != "binding" {
			return false, nil, nil
		}
		b := ca.GetObject().(*corev1.Binding)
		mu.Lock()
		bindings[b.Name] = b.Target.Name
		mu.Unlock()
		return true, nil, nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- New(client, slog.Default()).Run(ctx) }()

	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(bindings)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Give the pods that must stay unbound time to be (wrongly) processed.
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if bindings["b"] != "node-2" {
		t.Errorf("pod b with nodeSelector disk=ssd bound to %q", bindings["b"])
	}
	if bindings["a"] == "" {
		t.Errorf("pod a was not bound")
	}
	if _, ok := bindings["bound"]; ok {
		t.Errorf("already bound pod was rebound")
	}
	if _, ok := bindings["other"]; ok {
		t.Errorf("pod for another scheduler was bound")
	}
}
