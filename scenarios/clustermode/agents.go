package clustermode

// Kestrel's agents, where the cluster runs them (the kestrel-agent DaemonSet of
// `kestrel install`), are read through the Kubernetes API alone, as the
// cluster may be remote: a port-forward of each agent pod (SPDY, as kubectl
// port-forward) to the loopback address where the agent serves its API's GET
// requests (--api-listen-address). The pods run in the node's network
// namespace (hostNetwork), so the forward dials the node's loopback.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/scenarios/sim"
)

// agentLabel is the label `kestrel install` puts on the agent DaemonSet.
const agentLabel = "app.kubernetes.io/name=kestrel-agent"

// apiFlag is the agent flag naming its read-only API's TCP address.
const apiFlag = "--api-listen-address"

// relist is how often the agent pods are listed again while every forward
// stands (a replaced pod's forward breaks, which lists them at once).
const relist = 10 * time.Second

// kestrel is the cluster's Kestrel agents, or why there are none to read.
type kestrel struct {
	kube kubernetes.Interface
	rest *rest.Config

	// Where found: the DaemonSet, its pods' selector, the API port.
	daemonSet string // namespace/name
	namespace string
	selector  string
	port      int
	// why is set when no agent is read: no Kestrel, or agents without the API.
	why string

	mu       sync.Mutex
	forwards map[string]*forward // by pod name
	listed   time.Time
}

// findKestrel looks for Kestrel's agent DaemonSet and the port its agents
// serve their API on.
func findKestrel(ctx context.Context, cs kubernetes.Interface, rc *rest.Config) (*kestrel, error) {
	k := &kestrel{kube: cs, rest: rc, forwards: map[string]*forward{}}
	dsl, err := cs.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{LabelSelector: agentLabel})
	if apierrors.IsForbidden(err) {
		// A kubeconfig that may run the scenarios need not see the
		// cluster's DaemonSets: the run is then judged by verdicts.
		k.why = "the kubeconfig may not list DaemonSets, so Kestrel's agents cannot be found (" + err.Error() + ")"
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking for Kestrel's agents (DaemonSets labelled %s): %w", agentLabel, err)
	}
	if len(dsl.Items) == 0 {
		k.why = "the cluster runs no Kestrel agent (no DaemonSet labelled " + agentLabel + ")"
		return k, nil
	}
	ds := &dsl.Items[0]
	k.daemonSet = ds.Namespace + "/" + ds.Name
	k.namespace = ds.Namespace
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("DaemonSet %s: selector: %w", k.daemonSet, err)
	}
	k.selector = sel.String()
	port, err := apiPort(ds)
	if err != nil {
		k.why = fmt.Sprintf("Kestrel's agents (DaemonSet %s) %v", k.daemonSet, err)
		return k, nil
	}
	k.port = port
	return k, nil
}

// apiPort is the port of the agent container's --api-listen-address, which
// must be on the loopback (the agent refuses any other).
func apiPort(ds *appsv1.DaemonSet) (int, error) {
	for _, c := range ds.Spec.Template.Spec.Containers {
		args := append(append([]string{}, c.Command...), c.Args...)
		for i, a := range args {
			var addr string
			switch {
			case strings.HasPrefix(a, apiFlag+"="):
				addr = strings.TrimPrefix(a, apiFlag+"=")
			case a == apiFlag && i+1 < len(args):
				addr = args[i+1]
			default:
				continue
			}
			_, p, err := net.SplitHostPort(addr)
			if err != nil {
				return 0, fmt.Errorf("container %s: %s %q: %w", c.Name, apiFlag, addr, err)
			}
			port, err := strconv.Atoi(p)
			if err != nil || port <= 0 || port > 65535 {
				return 0, fmt.Errorf("container %s: %s %q: no port", c.Name, apiFlag, addr)
			}
			return port, nil
		}
	}
	return 0, fmt.Errorf("serve no API over TCP (no %s; `kestrel install` sets it with --agent-api-port)", apiFlag)
}

// note is what the run says about the agents.
func (k *kestrel) note() string {
	if k.why != "" {
		return "cluster mode: " + k.why + ": verdicts alone are compared (drop reasons and flows are not checked)"
	}
	return fmt.Sprintf("cluster mode: Kestrel's agents (DaemonSet %s) are read through port-forwards to their API (127.0.0.1:%d on each node): "+
		"syncs wait for their policy revision, and drop reasons and flows are checked", k.daemonSet, k.port)
}

// agents are the running agent pods' APIs, each through its port-forward,
// made or made again as needed.
func (k *kestrel) agents(ctx context.Context) ([]sim.Agent, error) {
	if k.why != "" {
		return nil, fmt.Errorf("%w: %s", sim.ErrNoAgents, k.why)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	stale := time.Since(k.listed) > relist || len(k.forwards) == 0
	for _, f := range k.forwards {
		stale = stale || f.broken()
	}
	if stale {
		if err := k.refresh(ctx); err != nil {
			return nil, err
		}
	}
	out := make([]sim.Agent, 0, len(k.forwards))
	for _, f := range k.forwards {
		out = append(out, f.agent)
	}
	return out, nil
}

// refresh lists the agent pods and forwards to each running one, keeping the
// forwards that stand, closing those of pods gone.
func (k *kestrel) refresh(ctx context.Context) error {
	pl, err := k.kube.CoreV1().Pods(k.namespace).List(ctx, metav1.ListOptions{LabelSelector: k.selector})
	if err != nil {
		return fmt.Errorf("agent pods of %s: %w", k.daemonSet, err)
	}
	keep := map[string]bool{}
	for _, p := range pl.Items {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		keep[p.Name] = true
		if f, ok := k.forwards[p.Name]; ok && f.uid == p.UID && !f.broken() {
			continue
		}
		if f, ok := k.forwards[p.Name]; ok {
			f.close()
		}
		f, err := k.forward(ctx, &p)
		if err != nil {
			return err
		}
		k.forwards[p.Name] = f
	}
	for name, f := range k.forwards {
		if !keep[name] {
			f.close()
			delete(k.forwards, name)
		}
	}
	if len(k.forwards) == 0 {
		return fmt.Errorf("no agent pod of %s is running", k.daemonSet)
	}
	k.listed = time.Now()
	return nil
}

func (k *kestrel) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for name, f := range k.forwards {
		f.close()
		delete(k.forwards, name)
	}
}

// forward is one agent pod's port-forward.
type forward struct {
	uid   types.UID // the pod's: a pod of the same name is another agent
	agent sim.Agent
	stop  chan struct{}
	done  chan struct{} // closed when the forward ends (the connection broke or stop)
	once  sync.Once
}

func (f *forward) broken() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

func (f *forward) close() {
	f.once.Do(func() { close(f.stop) })
	<-f.done
}

// forwardTimeout bounds making one port-forward.
const forwardTimeout = 30 * time.Second

// forward opens a port-forward from a free port of this machine's loopback to
// the agent API's port of pod p.
func (k *kestrel) forward(ctx context.Context, p *corev1.Pod) (*forward, error) {
	transport, upgrader, err := spdy.RoundTripperFor(k.rest)
	if err != nil {
		return nil, err
	}
	url := k.kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(p.Namespace).Name(p.Name).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, url)
	f := &forward{uid: p.UID, stop: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan struct{})
	pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", k.port)}, f.stop, ready, io.Discard, io.Discard)
	if err != nil {
		return nil, err
	}
	errc := make(chan error, 1)
	go func() {
		errc <- pf.ForwardPorts()
		close(f.done)
	}()
	where := fmt.Sprintf("agent %s/%s (node %s)", p.Namespace, p.Name, p.Spec.NodeName)
	select {
	case <-ready:
	case err := <-errc:
		return nil, fmt.Errorf("port-forward to %s:%d: %w", where, k.port, err)
	case <-time.After(forwardTimeout):
		f.close()
		return nil, fmt.Errorf("port-forward to %s:%d: not ready in %s", where, k.port, forwardTimeout)
	case <-ctx.Done():
		f.close()
		return nil, ctx.Err()
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) != 1 {
		f.close()
		return nil, errors.Join(fmt.Errorf("port-forward to %s: no local port", where), err)
	}
	local := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(ports[0].Local)))
	f.agent = sim.Agent{Name: where, Client: api.NewTCPClient(local), OtherClock: true}
	return f, nil
}
