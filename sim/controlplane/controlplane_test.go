package controlplane

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// requireBinaries skips when the Kubernetes binaries or etcd are absent, naming them;
// under KESTREL_REQUIRE_PRIVILEGED=1 (CI) their absence is a failure.
func requireBinaries(t *testing.T) {
	t.Helper()
	missing := MissingBinaries(DefaultBinDir(), "/usr/bin/etcd")
	if len(missing) == 0 {
		return
	}
	if os.Getenv("KESTREL_REQUIRE_PRIVILEGED") == "1" {
		t.Fatal(missingError(missing))
	}
	t.Skip(missingError(missing))
}

const l3Policy = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: backend-from-frontend
  namespace: shop
spec:
  endpointSelector:
    matchLabels: {app: backend}
  ingress:
  - fromEndpoints:
    - matchLabels: {app: frontend}
    toPorts:
    - ports:
      - {port: "8080", protocol: TCP}
`

const clusterwidePolicy = `
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: deny-world
specs:
- endpointSelector: {}
  egressDeny:
  - toEntities: [world]
`

func TestControlPlaneServesPoliciesAndRunsControllers(t *testing.T) {
	requireBinaries(t)
	state := t.TempDir()
	port, err := FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	cp, err := Start(ctx, Options{Name: "test", StateDir: state, BindAddress: "127.0.0.1", SecurePort: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Stop(state) })
	t.Logf("control plane ready in %s at %s", cp.Ready.Round(time.Millisecond), cp.Server)

	report := Status(ctx, state)
	if !report.Ready {
		t.Errorf("Status: not ready: %s", report.ReadyError)
	}
	pids := map[string]int{}
	for _, p := range report.Processes {
		if !p.Running {
			t.Errorf("Status: %s not running", p.Name)
		}
		pids[p.Name] = p.PID
	}

	config, err := cp.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	clients := kubernetes.NewForConfigOrDie(config)
	dyn := dynamic.NewForConfigOrDie(config)

	t.Run("a namespace gets its service account from the controller manager", func(t *testing.T) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}
		if _, err := clients.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, ctx, "service account shop/default", func() error {
			_, err := clients.CoreV1().ServiceAccounts("shop").Get(ctx, "default", metav1.GetOptions{})
			return err
		})
	})

	t.Run("Cilium policies apply unchanged and read back whole", func(t *testing.T) {
		cnp := mustObject(t, l3Policy)
		cnpAPI := dyn.Resource(schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumnetworkpolicies"}).Namespace("shop")
		if _, err := cnpAPI.Create(ctx, cnp, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := cnpAPI.Get(ctx, "backend-from-frontend", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ingress, _, _ := unstructured.NestedSlice(got.Object, "spec", "ingress")
		ports, _, _ := unstructured.NestedSlice(ingress[0].(map[string]any), "toPorts")
		if port := ports[0].(map[string]any)["ports"].([]any)[0].(map[string]any)["port"]; port != "8080" {
			t.Errorf("spec.ingress[0].toPorts[0].ports[0].port = %v, want 8080", port)
		}

		ccnp := mustObject(t, clusterwidePolicy)
		ccnpAPI := dyn.Resource(schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumclusterwidenetworkpolicies"})
		if _, err := ccnpAPI.Create(ctx, ccnp, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a service with a selector gets an EndpointSlice", func(t *testing.T) {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "backend", Namespace: "shop"},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": "backend"},
				Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
			},
		}
		if _, err := clients.CoreV1().Services("shop").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, ctx, "an EndpointSlice for shop/backend", func() error {
			slices, err := clients.DiscoveryV1().EndpointSlices("shop").List(ctx, metav1.ListOptions{
				LabelSelector: discoveryv1.LabelServiceName + "=backend",
			})
			if err == nil && len(slices.Items) == 0 {
				err = errNotYet
			}
			return err
		})
	})

	if err := Stop(state); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for name, pid := range pids {
		if alive(pid) {
			t.Errorf("%s (pid %d) still alive after Stop", name, pid)
		}
		if _, err := os.Stat(PIDFile(state, name)); !os.IsNotExist(err) {
			t.Errorf("%s: pid file left behind", name)
		}
	}
	if err := Stop(state); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	for _, p := range Status(ctx, state).Processes {
		if p.Running {
			t.Errorf("Status after Stop: %s running", p.Name)
		}
	}
}

var errNotYet = errors.New("none yet")

func eventually(t *testing.T, ctx context.Context, what string, check func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no %s: %v", what, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func mustObject(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	obj := map[string]any{}
	if err := yaml.Unmarshal([]byte(manifest), &obj); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: obj}
}
