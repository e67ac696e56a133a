package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kestrelnet/kestrel/agent/cni"
)

// cniConfName sorts first in the runtime's conf dir, so the runtime picks Kestrel's.
const cniConfName = "05-kestrel.conflist"

// writeCNIConf writes the node's CNI configuration into dir once the agent serves
// its API: the runtime considers the node's network ready from then (kubelet
// reports the node Ready), so no pod is created before the agent can answer. The
// pod ranges come from the Node object (the controller manager allocates them;
// this waits until it has).
func writeCNIConf(ctx context.Context, cs kubernetes.Interface, node, dir, socket, ipamDir string, log *slog.Logger) error {
	var cidrs []string
	for {
		n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err == nil {
			cidrs = n.Spec.PodCIDRs
			if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
				cidrs = []string{n.Spec.PodCIDR}
			}
			if len(cidrs) > 0 {
				break
			}
			log.Info("waiting for the node's pod ranges (spec.podCIDRs)")
		} else {
			log.Warn("cannot read this node", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	var gateway string
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return fmt.Errorf("node %s spec.podCIDRs %q: %w", node, c, err)
		}
		if p.Addr().Is4() && gateway == "" {
			gateway = p.Masked().Addr().Next().String()
		}
	}
	conf := map[string]any{
		// 1.0.0: containerd 1.6 (Debian bookworm's, in kind's nodes) rejects 1.1.0 results.
		"cniVersion": "1.0.0",
		"name":       "kestrel",
		"plugins": []map[string]any{{
			"type":        "kestrel-cni",
			"agentSocket": socket,
			"podCIDRs":    cidrs,
			"gateway":     gateway,
			"ipamDir":     ipamDir,
			// containerd then passes the pod's annotations (kestrel.dev/ip).
			"capabilities": map[string]bool{cni.PodAnnotationsCapability: true},
		}},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+cniConfName+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, cniConfName)); err != nil {
		return err
	}
	log.Info("CNI configuration written", "path", filepath.Join(dir, cniConfName), "podCIDRs", cidrs)
	return nil
}

// installCNIBinary copies the kestrel-cni beside this program into dir (the
// DaemonSet's init container runs it with the node's /opt/cni/bin mounted).
func installCNIBinary(dir string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	src, err := os.Open(filepath.Join(filepath.Dir(self), "kestrel-cni"))
	if err != nil {
		return err
	}
	defer src.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(dir, ".kestrel-cni.tmp")
	dst, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	// A rename, so a runtime running the old binary meanwhile never sees half a file.
	return os.Rename(tmp, filepath.Join(dir, "kestrel-cni"))
}
