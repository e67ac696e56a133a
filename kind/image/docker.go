package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// docker runs the docker CLI and returns its trimmed stdout; errors carry stderr.
func docker(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(short(args), " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// short keeps error messages readable when an argument is a long script.
func short(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if len(a) > 80 {
			a = a[:77] + "..."
		}
		out[i] = a
	}
	return out
}

// ImageExists reports whether the local docker has image ref.
func ImageExists(ctx context.Context, ref string) bool {
	_, err := docker(ctx, nil, "image", "inspect", "--format", "{{.Id}}", ref)
	return err == nil
}

// pipeDocker runs `docker from...` into `docker to...` (save into a node's ctr import).
func pipeDocker(ctx context.Context, from, to []string) error {
	src := exec.CommandContext(ctx, "docker", from...)
	dst := exec.CommandContext(ctx, "docker", to...)
	r, err := src.StdoutPipe()
	if err != nil {
		return err
	}
	dst.Stdin = r
	var e1, e2 bytes.Buffer
	src.Stderr, dst.Stderr = &e1, &e2
	dst.Stdout = io.Discard
	if err := src.Start(); err != nil {
		return err
	}
	if err := dst.Run(); err != nil {
		_ = src.Wait()
		return fmt.Errorf("docker %s: %w: %s", strings.Join(short(to), " "), err, strings.TrimSpace(e2.String()))
	}
	if err := src.Wait(); err != nil {
		return fmt.Errorf("docker %s: %w: %s", strings.Join(short(from), " "), err, strings.TrimSpace(e1.String()))
	}
	return nil
}
