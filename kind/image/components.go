package image

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// component is one control-plane image kubeadm expects, made from one program.
type component struct {
	Ref        string // as `kubeadm config images list` prints it
	Program    string // file name in the bin dir
	Path       string // where the image holds it
	Entrypoint string // JSON array; empty: none (kubeadm's static pods name the command)
}

// componentFor maps a required image to the program that makes it. Static pods
// run "kube-apiserver ..." etc. through PATH, so those programs sit in
// /usr/local/bin with no entrypoint; CoreDNS and pause are run by their entrypoint,
// as their upstream images are.
func componentFor(ref string) (component, error) {
	repo := ref
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo = ref[:i]
	}
	name := repo[strings.LastIndex(repo, "/")+1:]
	switch name {
	case "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "etcd":
		return component{Ref: ref, Program: name, Path: "usr/local/bin/" + name}, nil
	case "coredns":
		return component{Ref: ref, Program: "coredns", Path: "coredns", Entrypoint: `["/coredns"]`}, nil
	case "pause":
		return component{Ref: ref, Program: "pause", Path: "pause", Entrypoint: `["/pause"]`}, nil
	}
	return component{}, fmt.Errorf("no local build for image %s", ref)
}

// importComponent makes the docker image c.Ref holding the program from binDir.
func importComponent(ctx context.Context, c component, binDir string) error {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeTar(pw, []entry{
			{Path: c.Path, Mode: 0o755, Source: filepath.Join(binDir, c.Program)},
			{Path: "tmp", Dir: true, Mode: 0o1777},
		}))
	}()
	args := []string{"import", "--change", "ENV PATH=/usr/local/bin:/usr/bin:/bin"}
	if c.Entrypoint != "" {
		args = append(args, "--change", "ENTRYPOINT "+c.Entrypoint)
	}
	args = append(args, "-", c.Ref)
	_, err := docker(ctx, pr, args...)
	pr.Close()
	return err
}
