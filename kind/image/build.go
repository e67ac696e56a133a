// Package image builds, offline, every image a Kestrel kind cluster runs: the node
// image (Debian bookworm from mmdebstrap, kind's base files, kubelet/kubeadm/kubectl,
// and the control-plane images imported into its containerd), the agent image and
// the workload image. Every image is tagged with a hash of its inputs, so a build
// with nothing changed reuses them (kind/README.md).
package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// recipeVersion changes whenever the way an image is assembled changes, so images
// of an older recipe are not reused.
const recipeVersion = "1"

// NodeRepo is the node image's repository; its tag is the hash of its inputs.
const NodeRepo = "kestrel-kind-node"

// KindModuleVersion is the sigs.k8s.io/kind release whose base files the node image
// carries; go.mod pins the same (a test checks).
const KindModuleVersion = "v0.25.0"

// Options say where the inputs are and where the cache goes.
type Options struct {
	Source   string    // the Kestrel source tree (kind/build-bins.sh, the agent's packages)
	BinDir   string    // where build-bins.sh puts the node's programs
	CacheDir string    // scratch and static builds: ~/.cache/kestrel/kind
	Rebuild  bool      // ignore cached images
	Verbose  bool      // show the builders' output
	Log      io.Writer // progress lines; nil: none
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, "kind image: "+format+"\n", args...)
	}
}

// Result names the images and what the build did.
type Result struct {
	Node, Agent, Workload string
	NodeCached            bool
	Took                  time.Duration
}

// DefaultOptions finds the source tree from the working directory or the running
// binary (bin/ sits in it), and the cache under ~/.cache/kestrel.
func DefaultOptions(k8sVersion string) (Options, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	o := Options{
		BinDir:   filepath.Join(home, ".cache", "kestrel", "kind-"+k8sVersion, "bin"),
		CacheDir: filepath.Join(home, ".cache", "kestrel", "kind"),
	}
	if d := os.Getenv("KESTREL_KIND_BIN"); d != "" {
		o.BinDir = d
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, s := range starts {
		if root := findSource(s); root != "" {
			o.Source = root
			return o, nil
		}
	}
	return o, fmt.Errorf("the Kestrel source tree (with kind/build-bins.sh) is neither above %v", starts)
}

func findSource(dir string) string {
	for {
		if _, err := os.Stat(filepath.Join(dir, "kind", "build-bins.sh")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Build makes every image, reusing those whose inputs did not change.
func Build(ctx context.Context, o Options, k8sVersion string) (Result, error) {
	start := time.Now()
	var res Result
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return res, err
	}
	if _, err := docker(ctx, nil, "version", "--format", "{{.Server.Version}}"); err != nil {
		return res, fmt.Errorf("docker does not answer (run `make deps`, which installs and starts it): %w", err)
	}
	if err := buildBins(ctx, o); err != nil {
		return res, err
	}
	if err := staticBuild(ctx, o.Source, o.BinDir, "./kind/pause"); err != nil {
		return res, err
	}
	kindDir, err := kindModuleDir(ctx, o.Source)
	if err != nil {
		return res, err
	}
	refs, err := requiredImages(ctx, o.BinDir, k8sVersion)
	if err != nil {
		return res, err
	}
	var comps []component
	for _, r := range refs {
		c, err := componentFor(r)
		if err != nil {
			return res, err
		}
		comps = append(comps, c)
	}

	base, err := baseImage(ctx, o)
	if err != nil {
		return res, err
	}
	h, sum := newHasher()
	h.str("recipe", recipeVersion)
	h.str("base", base)
	h.str("version", k8sVersion)
	if err := h.tree(filepath.Join(kindDir, "images", "base", "files")); err != nil {
		return res, err
	}
	h.str("node setup", nodeSetup)
	h.str("bpffs unit", bpffsUnit)
	h.str("storage", storageManifest)
	for _, p := range []string{"kubelet", "kubeadm", "kubectl"} {
		if err := h.file(p, filepath.Join(o.BinDir, p)); err != nil {
			return res, err
		}
	}
	for _, c := range comps {
		h.str("image", c.Ref+" "+c.Path+" "+c.Entrypoint)
		if err := h.file(c.Program, filepath.Join(o.BinDir, c.Program)); err != nil {
			return res, err
		}
	}
	res.Node = NodeRepo + ":" + sum()
	if ImageExists(ctx, res.Node) && !o.Rebuild {
		res.NodeCached = true
		o.logf("node image %s: cached", res.Node)
	} else {
		o.logf("node image %s: building (%d control-plane images)", res.Node, len(comps))
		for _, c := range comps {
			if err := importComponent(ctx, c, o.BinDir); err != nil {
				return res, err
			}
		}
		err := buildNode(ctx, o, base, res.Node, kindDir, k8sVersion, comps)
		// The component images live on in the node image; the host keeps none.
		for _, c := range comps {
			docker(context.Background(), nil, "rmi", c.Ref) //nolint:errcheck // best effort
		}
		if err != nil {
			return res, err
		}
	}
	if res.Agent, res.Workload, err = appImages(ctx, o); err != nil {
		return res, err
	}
	res.Took = time.Since(start)
	return res, nil
}

// requiredImages asks the built kubeadm which images its control plane runs.
// buildBins runs kind/build-bins.sh, which builds the node's programs into
// o.BinDir: a no-op for each whose stamp matches. env adds to its
// environment (KESTREL_KIND_KNP=1: kube-network-policies too).
func buildBins(ctx context.Context, o Options, env ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(o.Source, "kind", "build-bins.sh"))
	cmd.Env = append(append(os.Environ(), "KESTREL_KIND_BIN="+o.BinDir), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kind/build-bins.sh: %w\n%s", err, tail(out, 30))
	}
	if o.Verbose {
		o.logf("%s", strings.TrimSpace(string(out)))
	}
	return nil
}

func requiredImages(ctx context.Context, binDir, k8sVersion string) ([]string, error) {
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "kubeadm"), "config", "images", "list",
		"--kubernetes-version", k8sVersion).Output()
	if err != nil {
		return nil, fmt.Errorf("kubeadm config images list: %w", err)
	}
	var refs []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		l = strings.TrimSpace(l)
		// kube-proxy does not run: Kestrel replaces it (kubeProxyMode none).
		if l == "" || strings.Contains(l, "/kube-proxy:") {
			continue
		}
		refs = append(refs, l)
	}
	return refs, nil
}

// kindModuleDir is the kind module in the module cache, downloaded if absent.
func kindModuleDir(ctx context.Context, source string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", "sigs.k8s.io/kind@"+KindModuleVersion)
	cmd.Dir = source
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download sigs.k8s.io/kind@%s: %w", KindModuleVersion, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("go mod download sigs.k8s.io/kind@%s: no module directory in %q (%v)", KindModuleVersion, out, err)
	}
	return mod.Dir, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
