package image

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Debian is the node's distribution, as kind's own base image.
const debianSuite = "bookworm"

// nodePackages are the Debian packages of the node: kind's base image list
// (images/base/Dockerfile) without the storage clients (nfs, iscsi), plus
// containerd, runc and the CNI plugins from Debian instead of kind's own builds.
var nodePackages = []string{
	"systemd", "conntrack", "iptables", "nftables", "iproute2", "ethtool", "util-linux", "mount", "kmod",
	"libseccomp2", "pigz", "bash", "ca-certificates", "curl", "jq", "procps",
	"containerd", "runc", "containernetworking-plugins",
}

// rootfsHook trims the root file system as kind's Dockerfile does: systemd starts only
// the units enabled later, journald does not read the kernel log, /sbin/init is systemd.
// It runs on the host with the root file system as $1.
const rootfsHook = `set -e
find "$1"/lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
rm -f "$1"/lib/systemd/system/multi-user.target.wants/* "$1"/etc/systemd/system/*.wants/* \
	"$1"/lib/systemd/system/local-fs.target.wants/* "$1"/lib/systemd/system/sockets.target.wants/*udev* \
	"$1"/lib/systemd/system/sockets.target.wants/*initctl* "$1"/lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >> "$1"/etc/systemd/journald.conf
ln -sf /lib/systemd/systemd "$1"/sbin/init
rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/usr/share/doc/* "$1"/usr/share/man/*`

// baseImage builds (or finds) the Debian root file system image with mmdebstrap and
// returns its tag, kestrel-kind-base:<hash of the package list and hook>.
func baseImage(ctx context.Context, o Options) (string, error) {
	h, sum := newHasher()
	h.str("recipe", recipeVersion)
	h.str("suite", debianSuite)
	h.str("packages", strings.Join(nodePackages, ","))
	h.str("hook", rootfsHook)
	tag := "kestrel-kind-base:" + sum()
	if ImageExists(ctx, tag) && !o.Rebuild {
		o.logf("base image %s: cached", tag)
		return tag, nil
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return "", fmt.Errorf("mmdebstrap not found: run `make deps` (apt-get install mmdebstrap)")
	}
	// The tar stays until docker has it, so a failed import does not cost the
	// debootstrap again.
	out := filepath.Join(o.CacheDir, "rootfs-"+strings.TrimPrefix(tag, "kestrel-kind-base:")+".tar")
	if _, err := os.Stat(out); err != nil {
		o.logf("base image %s: mmdebstrap %s (%d packages)", tag, debianSuite, len(nodePackages))
		tmp := out + ".tmp"
		cmd := exec.CommandContext(ctx, "mmdebstrap", "--variant=minbase", "--include="+strings.Join(nodePackages, ","),
			"--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
			"--customize-hook="+rootfsHook, "--format=tar", debianSuite, tmp)
		if b, err := runCaptured(cmd, o.Verbose); err != nil {
			os.Remove(tmp)
			return "", fmt.Errorf("mmdebstrap: %w\n%s", err, tail(b, 30))
		}
		if err := os.Rename(tmp, out); err != nil {
			return "", err
		}
	}
	f, err := os.Open(out)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := docker(ctx, f, "import",
		"--change", "ENV container=docker",
		"--change", `ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]`,
		"--change", "LABEL io.kestrel.kind.inputs="+strings.TrimPrefix(tag, "kestrel-kind-base:"),
		"-", tag); err != nil {
		return "", err
	}
	return tag, os.Remove(out)
}

func runCaptured(cmd *exec.Cmd, verbose bool) ([]byte, error) {
	if verbose {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return nil, cmd.Run()
	}
	return cmd.CombinedOutput()
}

func tail(b []byte, lines int) string {
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
