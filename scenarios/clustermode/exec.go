package clustermode

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/kestrelnet/kestrel/sim/workload"
)

// workloadBin is the kestrel binary in the workload image (kind/image).
const workloadBin = "/usr/local/bin/kestrel"

// Connect runs reqs in one `kestrel sim connect --batch` process started in the
// pod's first container through the API's exec subresource (SPDY, as kubectl
// exec): the probes leave from the pod as its own program's connections would.
func (b *Backend) Connect(ctx context.Context, namespace, pod string, reqs []workload.ConnectRequest) ([]workload.ConnectResult, error) {
	in, err := json.Marshal(reqs)
	if err != nil {
		return nil, err
	}
	req := b.kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).
		SubResource("exec").VersionedParams(&corev1.PodExecOptions{
		Command: []string{workloadBin, "sim", "connect", "--batch"},
		Stdin:   true, Stdout: true, Stderr: true,
	}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(b.rest, "POST", req.URL())
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: bytes.NewReader(in), Stdout: &stdout, Stderr: &stderr}); err != nil {
		return nil, fmt.Errorf("exec %s in %s/%s: %w: %s", workloadBin, namespace, pod, err, strings.TrimSpace(stderr.String()))
	}
	var out []workload.ConnectResult
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("exec %s in %s/%s said %q: %w", workloadBin, namespace, pod, stdout.String(), err)
	}
	return out, nil
}
