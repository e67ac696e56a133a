package install

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestObjectsRender(t *testing.T) {
	p := Defaults()
	p.Image = "kestrel/agent:abc"
	p.APIServerHost = "kestrel-control-plane"
	p.NodeRoutes = true
	objs, err := Objects(p)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	var ds appsv1.DaemonSet
	for _, o := range objs {
		kinds[o.GetKind()]++
		if o.GetKind() == "DaemonSet" {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &ds); err != nil {
				t.Fatal(err)
			}
		}
		if _, ok := resources[o.GetKind()]; !ok {
			t.Errorf("%s %s: no resource mapping", o.GetKind(), o.GetName())
		}
	}
	if kinds["CustomResourceDefinition"] != 3 || kinds["DaemonSet"] != 1 || kinds["ClusterRole"] != 1 || kinds["ServiceAccount"] != 1 {
		t.Errorf("kinds = %v", kinds)
	}
	c := ds.Spec.Template.Spec.Containers[0]
	if c.Image != "kestrel/agent:abc" || ds.Spec.Template.Spec.InitContainers[0].Image != "kestrel/agent:abc" {
		t.Errorf("images %q, %q", c.Image, ds.Spec.Template.Spec.InitContainers[0].Image)
	}
	// Not privileged; explicit capabilities, and never CAP_SYS_RESOURCE (hosts
	// without it in the bounding set cannot start such a container).
	sc := c.SecurityContext
	if sc == nil || sc.Privileged == nil || *sc.Privileged || sc.Capabilities == nil || len(sc.Capabilities.Add) == 0 {
		t.Fatalf("security context %+v", sc)
	}
	for _, cap := range sc.Capabilities.Add {
		if cap == "SYS_RESOURCE" {
			t.Error("agent asks for SYS_RESOURCE")
		}
	}
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"--auto-direct-node-routes", "--cni-conf-dir=/host/etc/cni/net.d", "--service-cluster-ip-range=10.96.0.0/16", "--node=$(NODE_NAME)", "--api-listen-address=127.0.0.1:9890"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["KUBERNETES_SERVICE_HOST"] != "kestrel-control-plane" || env["KUBERNETES_SERVICE_PORT"] != "6443" {
		t.Errorf("env %v", env)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/healthz" || c.LivenessProbe.HTTPGet.Path != "/livez" {
		t.Errorf("probes %+v %+v", c.ReadinessProbe, c.LivenessProbe)
	}
	cl, err := render("cleanup.yaml", p)
	if err != nil || len(cl) != 1 || cl[0].GetName() != "kestrel-cleanup" {
		t.Fatalf("cleanup: %v %v", cl, err)
	}
}

// The agent's informers never sync without read access to every resource it
// watches (agent/k8s/watcher.go): the CNI plugin then times out on every pod.
func TestClusterRoleCoversTheWatchedResources(t *testing.T) {
	p := Defaults()
	p.Image = "x"
	objs, err := Objects(p)
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &role); err != nil {
				t.Fatal(err)
			}
		}
	}
	can := map[string]bool{}
	for _, r := range role.Rules {
		verbs := strings.Join(r.Verbs, ",")
		if !strings.Contains(verbs, "list") || !strings.Contains(verbs, "watch") {
			continue
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				can[g+"/"+res] = true
			}
		}
	}
	for _, want := range []string{"/pods", "/namespaces", "/nodes", "/services", "/secrets", "discovery.k8s.io/endpointslices",
		"networking.k8s.io/networkpolicies", "cilium.io/ciliumnetworkpolicies", "cilium.io/ciliumclusterwidenetworkpolicies", "cilium.io/ciliumcidrgroups"} {
		if !can[want] {
			t.Errorf("the agent cannot list and watch %s", want)
		}
	}
}

func TestObjectsNeedImage(t *testing.T) {
	if _, err := Objects(Defaults()); err == nil {
		t.Error("no image: want an error")
	}
}

// Socket LB is on only with a cgroup directory: the agent then gets --bpf-lb-sock
// and that node directory mounted as its --cgroup-root; without one, neither.
func TestSocketLBCgroupMountsTheNodesDirectory(t *testing.T) {
	for _, dir := range []string{"", "/sys/fs/cgroup/unified"} {
		p := Defaults()
		p.Image = "kestrel/agent:abc"
		p.SocketLBCgroup = dir
		objs, err := Objects(p)
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
		c := ds.Spec.Template.Spec.Containers[0]
		args := strings.Join(c.Args, " ")
		hasArgs := strings.Contains(args, "--bpf-lb-sock") && strings.Contains(args, "--cgroup-root=/host/cgroup-root")
		mounted := ""
		for _, v := range ds.Spec.Template.Spec.Volumes {
			if v.Name == "cgroup-root" && v.HostPath != nil {
				mounted = v.HostPath.Path
			}
		}
		var inContainer bool
		for _, m := range c.VolumeMounts {
			inContainer = inContainer || (m.Name == "cgroup-root" && m.MountPath == "/host/cgroup-root")
		}
		if dir == "" && (hasArgs || mounted != "" || inContainer) {
			t.Errorf("no SocketLBCgroup: args %q, volume %q, mounted %v", args, mounted, inContainer)
		}
		if dir != "" && (!hasArgs || mounted != dir || !inContainer) {
			t.Errorf("SocketLBCgroup %s: args %q, volume %q, mounted %v", dir, args, mounted, inContainer)
		}
	}
}
