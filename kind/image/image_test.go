package image

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestComponentFor(t *testing.T) {
	for ref, want := range map[string]string{
		"registry.k8s.io/kube-apiserver:v1.31.4":  "kube-apiserver usr/local/bin/kube-apiserver ",
		"registry.k8s.io/etcd:3.5.15-0":           "etcd usr/local/bin/etcd ",
		"registry.k8s.io/coredns/coredns:v1.11.3": `coredns coredns ["/coredns"]`,
		"registry.k8s.io/pause:3.10":              `pause pause ["/pause"]`,
	} {
		c, err := componentFor(ref)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if got := c.Program + " " + c.Path + " " + c.Entrypoint; got != want || c.Ref != ref {
			t.Errorf("%s: %q, want %q", ref, got, want)
		}
	}
	if _, err := componentFor("registry.k8s.io/something-else:v1"); err == nil || !strings.Contains(err.Error(), "something-else") {
		t.Errorf("unknown image: %v, want an error naming it", err)
	}
}

func TestContainerdConfigSetsTheSandboxImage(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "images", "base", "files", "etc", "containerd")
	os.MkdirAll(p, 0o755)
	os.WriteFile(filepath.Join(p, "config.toml"), []byte("[plugins.\"io.containerd.grpc.v1.cri\"]\n  # fixed\n  sandbox_image = \"registry.k8s.io/pause:3.9\"\n  x = 1\n"), 0o644)
	out, err := containerdConfig(dir, "registry.k8s.io/pause:3.10")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `  sandbox_image = "registry.k8s.io/pause:3.10"`) || strings.Contains(string(out), "3.9") || !strings.Contains(string(out), "x = 1") {
		t.Errorf("config:\n%s", out)
	}
	os.WriteFile(filepath.Join(p, "config.toml"), []byte("version = 2\n"), 0o644)
	if _, err := containerdConfig(dir, "p"); err == nil {
		t.Error("a config without sandbox_image: want an error")
	}
}

// The tar stream lists parents before children, root-owned, with the given modes
// and link targets, as docker cp and import need.
func TestWriteTar(t *testing.T) {
	var buf bytes.Buffer
	if err := writeTar(&buf, []entry{
		{Path: "usr/local/bin/x", Mode: 0o755, Data: []byte("bin")},
		{Path: "/opt/cni/bin/ptp", Link: "/usr/lib/cni/ptp"},
		{Path: "tmp", Dir: true, Mode: 0o1777},
	}); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var names []string
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if parent := filepath.Dir(name); parent != "." && !seen[parent] {
			t.Errorf("%s before its parent %s", name, parent)
		}
		seen[name] = true
		names = append(names, name)
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s owned by %d:%d", name, h.Uid, h.Gid)
		}
		switch name {
		case "usr/local/bin/x":
			b, _ := io.ReadAll(tr)
			if string(b) != "bin" || h.Mode != 0o755 {
				t.Errorf("x: %q mode %o", b, h.Mode)
			}
		case "opt/cni/bin/ptp":
			if h.Typeflag != tar.TypeSymlink || h.Linkname != "/usr/lib/cni/ptp" {
				t.Errorf("ptp: %+v", h)
			}
		case "tmp":
			if h.Typeflag != tar.TypeDir || h.Mode != 0o1777 {
				t.Errorf("tmp: type %c mode %o", h.Typeflag, h.Mode)
			}
		}
	}
	if len(names) != 9 {
		t.Errorf("entries %v, want 3 entries and 6 parent directories", names)
	}
}

func TestDockerRef(t *testing.T) {
	for in, want := range map[string]string{
		"registry.k8s.io/pause:3.10": "registry.k8s.io/pause:3.10",
		"kestrel/agent:abc":          "docker.io/kestrel/agent:abc",
		"busybox:1":                  "docker.io/library/busybox:1",
		"localhost/x:1":              "localhost/x:1",
	} {
		if got := dockerRef(in); got != want {
			t.Errorf("dockerRef(%s) = %s, want %s", in, got, want)
		}
	}
}
