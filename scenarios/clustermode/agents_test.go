package clustermode

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kestrelnet/kestrel/install"
	"github.com/kestrelnet/kestrel/scenarios/sim"
)

// The DaemonSet `kestrel install` renders is found, with its API port; a
// cluster without it, or whose agents serve no API over TCP, has no agent
// to read, and the run says which.
func TestKestrelIsFoundByItsInstall(t *testing.T) {
	ctx := context.Background()
	p := install.Defaults()
	p.Image = "kestrel/agent:x"
	objs, err := install.Objects(p)
	if err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	for _, o := range objs {
		if o.GetKind() == "DaemonSet" {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &ds); err != nil {
				t.Fatal(err)
			}
		}
	}
	k, err := findKestrel(ctx, fake.NewSimpleClientset(&ds), &rest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if k.why != "" || k.port != p.APIPort || k.daemonSet != "kube-system/kestrel-agent" || k.selector != "app.kubernetes.io/name=kestrel-agent" {
		t.Fatalf("found %+v, want kube-system/kestrel-agent with port %d", k, p.APIPort)
	}
	if n := k.note(); !strings.Contains(n, "drop reasons and flows are checked") {
		t.Errorf("note %q", n)
	}

	// Another CNI: no such DaemonSet.
	none, err := findKestrel(ctx, fake.NewSimpleClientset(), &rest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = none.agents(ctx)
	if !errors.Is(err, sim.ErrNoAgents) || !strings.Contains(err.Error(), "runs no Kestrel agent") {
		t.Errorf("agents without Kestrel: %v", err)
	}
	if n := none.note(); !strings.Contains(n, "verdicts alone are compared") {
		t.Errorf("note %q", n)
	}

	// A kubeconfig that may not list DaemonSets.
	deny := fake.NewSimpleClientset(&ds)
	deny.PrependReactor("list", "daemonsets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "daemonsets"}, "", errors.New("RBAC"))
	})
	blind, err := findKestrel(ctx, deny, &rest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blind.agents(ctx); !errors.Is(err, sim.ErrNoAgents) || !strings.Contains(err.Error(), "may not list DaemonSets") {
		t.Errorf("agents with a kubeconfig that may not list DaemonSets: %v", err)
	}

	// Kestrel installed without the API listener.
	old := ds.DeepCopy()
	c := &old.Spec.Template.Spec.Containers[0]
	c.Args = slices.DeleteFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--api-listen-address") })
	mute, err := findKestrel(ctx, fake.NewSimpleClientset(old), &rest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mute.agents(ctx); !errors.Is(err, sim.ErrNoAgents) || !strings.Contains(err.Error(), "--api-listen-address") {
		t.Errorf("agents without the API listener: %v", err)
	}
}

func TestAPIPortForms(t *testing.T) {
	ds := func(c corev1.Container) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}}}
	}
	for _, c := range []struct {
		c    corev1.Container
		port int
		err  string
	}{
		{corev1.Container{Args: []string{"--api-listen-address=127.0.0.1:9890"}}, 9890, ""},
		{corev1.Container{Command: []string{"kestrel-agent", "--api-listen-address", "[::1]:7000"}}, 7000, ""},
		{corev1.Container{Name: "agent", Args: []string{"--api-listen-address=127.0.0.1"}}, 0, `container agent: --api-listen-address "127.0.0.1"`},
		{corev1.Container{Args: []string{"--socket=/run/x"}}, 0, "serve no API over TCP"},
	} {
		port, err := apiPort(ds(c.c))
		if port != c.port || (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%v: port %d, err %v; want %d, %q", append(c.c.Command, c.c.Args...), port, err, c.port, c.err)
		}
	}
}
