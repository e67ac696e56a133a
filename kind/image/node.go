package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// kindFiles lists kind's base files (images/base/files in the kind module) with the
// modes its Dockerfile gives them.
func kindFiles(kindDir string) ([]entry, error) {
	root := filepath.Join(kindDir, "images", "base", "files")
	var out []entry
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if strings.HasPrefix(rel, "LICENSES") {
			return nil
		}
		mode := int64(0o644)
		if strings.HasPrefix(rel, "usr/local/bin/") || strings.HasPrefix(rel, "kind/bin/") {
			mode = 0o755
		}
		out = append(out, entry{Path: rel, Mode: mode, Source: p})
		return nil
	})
	return out, err
}

var sandboxRe = regexp.MustCompile(`(?m)^(\s*sandbox_image\s*=\s*)"[^"]*"`)

// containerdConfig is kind's containerd config with the sandbox image set to the
// pause image kubeadm lists (kind's node-image build does the same).
func containerdConfig(kindDir, pause string) ([]byte, error) {
	raw, err := os.ReadFile(filepath.Join(kindDir, "images", "base", "files", "etc", "containerd", "config.toml"))
	if err != nil {
		return nil, err
	}
	if !sandboxRe.Match(raw) {
		return nil, fmt.Errorf("kind's containerd config has no sandbox_image")
	}
	return sandboxRe.ReplaceAll(raw, []byte(`${1}"`+pause+`"`)), nil
}

// storageManifest replaces kind's local-path provisioner (an image we do not build)
// with the StorageClass alone, so kind's storage step applies without a pull.
const storageManifest = `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/host-path
`

// bpffsUnit mounts the BPF file system at boot, as systemd hosts have it: the
// agents pin their maps and links there. systemd neither mounts it in a
// container nor accepts a .mount unit for it (an API file system), so a
// oneshot service does.
const bpffsUnit = `[Unit]
Description=BPF file system (Kestrel's agents pin their maps and links there)
DefaultDependencies=no
Before=kubelet.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'mountpoint -q /sys/fs/bpf || mount -t bpf -o mode=700 bpf /sys/fs/bpf'

[Install]
WantedBy=multi-user.target
`

// nodeSetup runs in the build container: the runtime spec kind's Dockerfile makes
// (with kind's hook that mounts product_uuid, without rlimits), then the units.
const nodeSetup = `set -e
ctr oci spec | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json
systemctl enable kubelet.service containerd.service undo-mount-hacks.service kestrel-bpffs.service
systemctl mask systemd-binfmt.service
mkdir -p /etc/kubernetes/manifests`

// buildNode commits the node image tag from base: kind's files, the Kubernetes
// programs, and every component image imported (not unpacked) into containerd's
// k8s.io namespace, so no node ever pulls.
func buildNode(ctx context.Context, o Options, base, tag, kindDir, k8sVersion string, comps []component) error {
	name := fmt.Sprintf("kestrel-kind-build-%d", time.Now().UnixNano())
	if _, err := docker(ctx, nil, "run", "-d", "--name", name, "--entrypoint", "sleep",
		"--security-opt", "seccomp=unconfined", base, "infinity"); err != nil {
		return err
	}
	defer docker(context.Background(), nil, "rm", "-f", "-v", name) //nolint:errcheck // best effort

	files, err := kindFiles(kindDir)
	if err != nil {
		return err
	}
	var pause string
	for _, c := range comps {
		if c.Program == "pause" {
			pause = c.Ref
		}
	}
	cfg, err := containerdConfig(kindDir, pause)
	if err != nil {
		return err
	}
	files = append(files,
		entry{Path: "etc/containerd/config.toml", Mode: 0o644, Data: cfg},
		entry{Path: "kind/version", Mode: 0o644, Data: []byte(k8sVersion)},
		entry{Path: "etc/systemd/system/kestrel-bpffs.service", Mode: 0o644, Data: []byte(bpffsUnit)},
		entry{Path: "kind/manifests/default-storage.yaml", Mode: 0o644, Data: []byte(storageManifest)},
		// Debian's containerd and ctr, where kind's units and scripts look.
		entry{Path: "usr/local/bin/containerd", Link: "/usr/bin/containerd"},
		entry{Path: "usr/local/bin/ctr", Link: "/usr/bin/ctr"},
		entry{Path: "opt/cni/bin", Dir: true, Mode: 0o755},
	)
	for _, p := range []string{"host-local", "loopback", "ptp", "portmap", "bridge"} {
		files = append(files, entry{Path: "opt/cni/bin/" + p, Link: "/usr/lib/cni/" + p})
	}
	for _, p := range []string{"kubelet", "kubeadm", "kubectl"} {
		files = append(files, entry{Path: "usr/bin/" + p, Mode: 0o755, Source: filepath.Join(o.BinDir, p)})
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, files)) }()
	_, err = docker(ctx, pr, "cp", "-", name+":/")
	pr.Close()
	if err != nil {
		return err
	}
	if _, err := docker(ctx, nil, "exec", name, "bash", "-c", nodeSetup); err != nil {
		return err
	}

	// containerd only to import: no snapshotter work, the images stay packed
	// until a node unpacks them.
	if _, err := docker(ctx, nil, "exec", name, "bash", "-c",
		`containerd >/tmp/containerd.log 2>&1 & echo $! >/tmp/containerd.pid
for i in $(seq 100); do ctr version >/dev/null 2>&1 && exit 0; sleep 0.1; done; cat /tmp/containerd.log; exit 1`); err != nil {
		return fmt.Errorf("containerd in the build container: %w", err)
	}
	for _, c := range comps {
		if err := pipeDocker(ctx, []string{"save", c.Ref},
			[]string{"exec", "-i", name, "ctr", "-n", "k8s.io", "images", "import", "--no-unpack", "-"}); err != nil {
			return fmt.Errorf("import %s: %w", c.Ref, err)
		}
	}
	have, err := docker(ctx, nil, "exec", name, "ctr", "-n", "k8s.io", "images", "ls", "-q")
	if err != nil {
		return err
	}
	for _, c := range comps {
		if !containsLine(have, dockerRef(c.Ref)) {
			return fmt.Errorf("image %s missing from the node's containerd after import (has: %s)", c.Ref, strings.ReplaceAll(have, "\n", ", "))
		}
	}
	if _, err := docker(ctx, nil, "exec", name, "bash", "-c",
		// The container's init (sleep) reaps nothing: a zombie counts as gone.
		`p=$(cat /tmp/containerd.pid); kill $p; while [ -e /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status; do sleep 0.1; done; rm -f /tmp/containerd.*`); err != nil {
		return err
	}
	_, err = docker(ctx, nil, "commit",
		"--change", `ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]`,
		"--change", `CMD []`,
		"--change", "LABEL io.kestrel.kind.inputs="+strings.TrimPrefix(tag, NodeRepo+":"),
		name, tag)
	if err != nil {
		return err
	}
	// systemd stops cleanly on SIGRTMIN+3; import and commit cannot set a stop
	// signal, a one-line build can.
	_, err = docker(ctx, strings.NewReader("FROM "+tag+"\nSTOPSIGNAL SIGRTMIN+3\n"), "build", "-q", "-t", tag, "-")
	return err
}

// dockerRef is ref as containerd lists it (docker.io/library/ for bare names).
func dockerRef(ref string) string {
	first := strings.SplitN(ref, "/", 2)[0]
	if !strings.Contains(ref, "/") {
		return "docker.io/library/" + ref
	}
	if !strings.ContainsAny(first, ".:") && first != "localhost" {
		return "docker.io/" + ref
	}
	return ref
}

func containsLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}
