package kubelet

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/kestrelnet/kestrel/sim/network"
)

// fakeNetwork records CNI verbs and hands out one address.
type fakeNetwork struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeNetwork) log(verb string, r *podRecord) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, verb+" "+r.ContainerID)
}

func (f *fakeNetwork) Add(_ context.Context, r *podRecord, ip string) ([]string, error) {
	f.log("ADD", r)
	return []string{"10.244.1.7"}, nil
}
func (f *fakeNetwork) Check(_ context.Context, r *podRecord) error { f.log("CHECK", r); return nil }
func (f *fakeNetwork) Del(_ context.Context, r *podRecord) error   { f.log("DEL", r); return nil }
func (f *fakeNetwork) Status(context.Context) error                { return nil }

func (f *fakeNetwork) verbs() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprint(f.calls)
}

func requirePrivileges(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root (CAP_SYS_ADMIN) to create network namespaces: run the tests as root")
	}
}

// wire gives a kubelet a lister fed from the fake API and a fake recorder,
// which Run would otherwise set up.
func wire(k *Kubelet) cache.Indexer {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	k.lister = corelisters.NewPodLister(idx)
	k.recorder = record.NewFakeRecorder(100)
	return idx
}

func refresh(t *testing.T, client *fake.Clientset, idx cache.Indexer, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	cur, err := client.CoreV1().Pods(pod.Namespace).Get(context.Background(), pod.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		idx.Delete(pod)
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	idx.Update(cur)
	return cur
}

func TestAPodGetsANamespaceAProcessAndAStatusAndIsAdoptedThenTornDown(t *testing.T) {
	requirePrivileges(t)
	uid := types.UID(fmt.Sprintf("%012x-test", time.Now().UnixNano()&0xffffffffffff))
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "sleeper", Namespace: "ns", UID: uid},
		Spec: corev1.PodSpec{NodeName: "node-2", Containers: []corev1.Container{
			{Name: "main", Image: "none", Command: []string{"sleep", "60"}}}},
	}
	client := fake.NewSimpleClientset(pod)
	net := &fakeNetwork{}
	state := t.TempDir()
	k, err := New(client, Options{Name: "kt", Node: "node-2", StateDir: state, KestrelBin: "/bin/false"}, net)
	if err != nil {
		t.Fatal(err)
	}
	idx := wire(k)
	idx.Add(pod)
	netnsName := network.PodNetns("kt", string(uid))
	t.Cleanup(func() { network.DeleteNetns(netnsName) })
	ctx := context.Background()

	if _, err := k.sync(ctx, "ns/sleeper"); err != nil {
		t.Fatal(err)
	}
	pod = refresh(t, client, idx, pod)
	if pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP != "10.244.1.7" || pod.Status.HostIP != "172.30.0.12" {
		t.Fatalf("status after first sync: phase %s podIP %s hostIP %s", pod.Status.Phase, pod.Status.PodIP, pod.Status.HostIP)
	}
	if conditionOf(pod.Status, corev1.PodReady) != corev1.ConditionTrue {
		t.Errorf("a running container without ports is not Ready: %+v", pod.Status.Conditions)
	}
	pid := k.pods[uid].rec.PIDs["main"]
	// `ip netns exec` enters the namespace a moment after it starts.
	for deadline := time.Now().Add(3 * time.Second); !network.InNetns(pid, netnsName) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !network.InNetns(pid, netnsName) {
		t.Errorf("process %d is not in netns %s", pid, netnsName)
	}

	// A restarted kubelet checks the network instead of adding it again,
	// and adopts the running process.
	k2, _ := New(client, Options{Name: "kt", Node: "node-2", StateDir: state, KestrelBin: "/bin/false"}, net)
	idx2 := wire(k2)
	idx2.Add(pod)
	recs, _ := k2.recs.all()
	for _, r := range recs {
		k2.pods[r.UID] = &podState{rec: r, procs: map[string]*proc{}, restarts: map[string]int32{}}
	}
	if _, err := k2.sync(ctx, "ns/sleeper"); err != nil {
		t.Fatal(err)
	}
	if got := net.verbs(); got != fmt.Sprintf("[ADD %s CHECK %s]", uid, uid) {
		t.Errorf("CNI calls = %s", got)
	}
	if p := k2.pods[uid].procs["main"]; p == nil || p.pid != pid {
		t.Errorf("process %d was not adopted: %+v", pid, p)
	}

	// Deletion: the process stops, the network is released, the netns goes,
	// and the pod is removed from the API.
	now := metav1.Now()
	pod.DeletionTimestamp = &now
	idx2.Update(pod)
	if _, err := k2.sync(ctx, "ns/sleeper"); err != nil {
		t.Fatal(err)
	}
	if refresh(t, client, idx2, pod) != nil {
		t.Errorf("pod still in the API after deletion")
	}
	if _, err := os.Stat(network.NetnsPath(netnsName)); !os.IsNotExist(err) {
		t.Errorf("netns %s still exists: %v", netnsName, err)
	}
	if syscall.Kill(pid, 0) == nil && network.InNetns(pid, netnsName) {
		t.Errorf("process %d still runs", pid)
	}
	if got := net.verbs(); got != fmt.Sprintf("[ADD %s CHECK %s DEL %s]", uid, uid, uid) {
		t.Errorf("CNI calls = %s", got)
	}
	if recs, _ := k2.recs.all(); len(recs) != 0 {
		t.Errorf("records left: %v", recs)
	}
}
