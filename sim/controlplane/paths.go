package controlplane

import (
	"fmt"
	"os"
	"path/filepath"
)

// KubernetesVersion is the release whose binaries sim runs; build-k8s.sh builds the
// version pinned in k8s/go.mod, and a test keeps the two equal.
const KubernetesVersion = "v1.31.4"

// The binaries a control plane needs. kubectl is built beside them for people and tests.
var kubernetesBinaries = []string{"kube-apiserver", "kube-controller-manager"}

// DefaultStateDir is /run/kestrel/sim/NAME, or $KESTREL_SIM_STATE/NAME.
func DefaultStateDir(name string) string {
	parent := os.Getenv("KESTREL_SIM_STATE")
	if parent == "" {
		parent = "/run/kestrel/sim"
	}
	return filepath.Join(parent, name)
}

// DefaultBinDir is where `make deps` puts the Kubernetes binaries:
// ~/.cache/kestrel/k8s-<version>/bin, or $KESTREL_K8S_BIN.
func DefaultBinDir() string {
	if dir := os.Getenv("KESTREL_K8S_BIN"); dir != "" {
		return dir
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".cache", "kestrel", "k8s-"+KubernetesVersion, "bin")
}

// MissingBinaries names the executables a control plane needs that are absent:
// the Kubernetes ones in binDir, and etcd.
func MissingBinaries(binDir, etcdPath string) []string {
	var missing []string
	for _, b := range kubernetesBinaries {
		if !isExecutable(filepath.Join(binDir, b)) {
			missing = append(missing, filepath.Join(binDir, b))
		}
	}
	if !isExecutable(etcdPath) {
		missing = append(missing, etcdPath)
	}
	return missing
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

func missingError(missing []string) error {
	return fmt.Errorf("missing %v: run `make deps` (builds Kubernetes %s, installs etcd-server)", missing, KubernetesVersion)
}
