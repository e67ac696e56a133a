package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// The repositories of Kestrel's own images; the tag is a hash of their programs.
const (
	AgentRepo    = "kestrel/agent"
	WorkloadRepo = "kestrel/workload"
)

// staticBuild builds Kestrel packages without cgo (the images are FROM scratch:
// no libc) into dir.
func staticBuild(ctx context.Context, source, dir string, pkgs ...string) error {
	args := append([]string{"build", "-trimpath", "-o", dir + "/"}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = source
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %v: %w\n%s", pkgs, err, out)
	}
	return nil
}

// appImage imports a FROM-scratch image holding the programs (path in image ->
// file) under repo:<hash of them>, unless it exists.
func appImage(ctx context.Context, o Options, repo string, files map[string]string, entrypoint string) (string, error) {
	h, sum := newHasher()
	h.str("recipe", recipeVersion)
	h.str("entrypoint", entrypoint)
	var entries []entry
	for _, p := range sortedKeys(files) {
		if err := h.file(p, files[p]); err != nil {
			return "", err
		}
		entries = append(entries, entry{Path: p, Mode: 0o755, Source: files[p]})
	}
	entries = append(entries, entry{Path: "tmp", Dir: true, Mode: 0o1777})
	tag := repo + ":" + sum()
	if ImageExists(ctx, tag) && !o.Rebuild {
		return tag, nil
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, entries)) }()
	_, err := docker(ctx, pr, "import", "--change", "ENV PATH=/usr/local/bin:/usr/bin:/bin",
		"--change", "ENTRYPOINT "+entrypoint, "--change", "LABEL io.kestrel.kind.inputs="+tag, "-", tag)
	pr.Close()
	return tag, err
}

// appImages builds the agent image (kestrel-agent, and kestrel-cni for the init
// container to put on the node) and the workload image (kestrel, whose hidden
// `sim workload` and `sim connect` serve and probe as in sim pods).
func appImages(ctx context.Context, o Options) (agent, workload string, err error) {
	dir := filepath.Join(o.CacheDir, "apps")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	if err := staticBuild(ctx, o.Source, dir, "./tools/kestrel-agent", "./tools/kestrel-cni", "./tools/kestrel"); err != nil {
		return "", "", err
	}
	agent, err = appImage(ctx, o, AgentRepo, map[string]string{
		"usr/local/bin/kestrel-agent": filepath.Join(dir, "kestrel-agent"),
		"usr/local/bin/kestrel-cni":   filepath.Join(dir, "kestrel-cni"),
	}, `["/usr/local/bin/kestrel-agent"]`)
	if err != nil {
		return "", "", err
	}
	workload, err = appImage(ctx, o, WorkloadRepo, map[string]string{
		"usr/local/bin/kestrel": filepath.Join(dir, "kestrel"),
	}, `["/usr/local/bin/kestrel"]`)
	return agent, workload, err
}

// WorkloadImage builds (or finds) the workload image alone.
func WorkloadImage(ctx context.Context, o Options) (string, error) {
	dir := filepath.Join(o.CacheDir, "apps")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := staticBuild(ctx, o.Source, dir, "./tools/kestrel"); err != nil {
		return "", err
	}
	return appImage(ctx, o, WorkloadRepo, map[string]string{
		"usr/local/bin/kestrel": filepath.Join(dir, "kestrel"),
	}, `["/usr/local/bin/kestrel"]`)
}
