package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The images of a kind cluster brought up without Kestrel (kind up --cni ptp
// --network-policy kube-network-policies), built offline like the others.
const (
	KubeProxyRepo = "kestrel/kube-proxy"
	KNPRepo       = "kestrel/kube-network-policies"
)

// PTPImages are the images `kind up --cni ptp` loads beside the workload image.
type PTPImages struct {
	// KubeProxy is tagged as kubeadm's DaemonSet names it
	// (registry.k8s.io/kube-proxy:VERSION).
	KubeProxy string
	// KNP is kube-network-policies, FROM scratch.
	KNP string
}

// BuildPTP builds kube-proxy's and kube-network-policies' images from the
// programs kind/build-bins.sh built (Build runs it first; kube-network-policies
// is built here, only for the clusters that run it). kube-proxy's is the
// node's Debian base with kube-proxy added: kube-proxy runs iptables,
// iptables-restore and conntrack, which a FROM-scratch image lacks.
func BuildPTP(ctx context.Context, o Options, k8sVersion string) (PTPImages, error) {
	var out PTPImages
	if err := buildBins(ctx, o, "KESTREL_KIND_KNP=1"); err != nil {
		return out, err
	}
	base, err := baseImage(ctx, o)
	if err != nil {
		return out, err
	}
	kp := filepath.Join(o.BinDir, "kube-proxy")
	h, sum := newHasher()
	h.str("recipe", recipeVersion)
	h.str("base", base)
	if err := h.file("kube-proxy", kp); err != nil {
		return out, err
	}
	own := KubeProxyRepo + ":" + sum()
	if !ImageExists(ctx, own) || o.Rebuild {
		dir, err := os.MkdirTemp(o.CacheDir, "kube-proxy-")
		if err != nil {
			return out, err
		}
		defer os.RemoveAll(dir)
		if err := os.Link(kp, filepath.Join(dir, "kube-proxy")); err != nil {
			if err := copyFile(kp, filepath.Join(dir, "kube-proxy")); err != nil {
				return out, err
			}
		}
		dockerfile := fmt.Sprintf("FROM %s\nCOPY kube-proxy /usr/local/bin/kube-proxy\nENTRYPOINT [\"/usr/local/bin/kube-proxy\"]\n", base)
		if _, err := docker(ctx, strings.NewReader(dockerfile), "build", "-q", "-t", own, "-f", "-", dir); err != nil {
			return out, err
		}
	}
	out.KubeProxy = "registry.k8s.io/kube-proxy:" + k8sVersion
	if _, err := docker(ctx, nil, "tag", own, out.KubeProxy); err != nil {
		return out, err
	}
	out.KNP, err = appImage(ctx, o, KNPRepo, map[string]string{
		"bin/netpol": filepath.Join(o.BinDir, "kube-network-policies"),
	}, `["/bin/netpol"]`)
	return out, err
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}
