package controlplane

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// poll calls check until it returns true, ctx ends, or the process that should make it
// true has died; the error then carries the end of that process's log.
func poll(ctx context.Context, stateDir, process, what string, check func() (bool, error)) error {
	var last error
	for {
		ok, err := check()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if _, running := RunningPID(stateDir, process); !running {
			return fmt.Errorf("%s exited while waiting for %s; end of %s:\n%s",
				process, what, LogFile(stateDir, process), logTail(stateDir, process, 15))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s (last error: %v): %w", what, last, context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func waitEtcd(ctx context.Context, stateDir, clientURL string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return poll(ctx, stateDir, "etcd", "etcd health", func() (bool, error) {
		resp, err := client.Get(clientURL + "/health")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"true"`), nil
	})
}

// waitFile waits for a file that process writes, and returns its content.
func waitFile(ctx context.Context, stateDir, process, path string) ([]byte, error) {
	var content []byte
	err := poll(ctx, stateDir, process, path, func() (bool, error) {
		b, err := os.ReadFile(path)
		if err != nil || len(b) == 0 {
			return false, err
		}
		content = b
		return true, nil
	})
	return content, err
}

func waitReadyz(ctx context.Context, stateDir string, config *rest.Config) error {
	return poll(ctx, stateDir, "kube-apiserver", "/readyz", func() (bool, error) {
		return readyz(ctx, config)
	})
}

// readyz asks kube-apiserver's /readyz.
func readyz(ctx context.Context, config *rest.Config) (bool, error) {
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(string(body)) == "ok", nil
}

// waitDefaultServiceAccount waits for what kube-controller-manager creates first: the
// default namespace's service account. Pods are refused until it exists.
func waitDefaultServiceAccount(ctx context.Context, stateDir string, client kubernetes.Interface) error {
	return poll(ctx, stateDir, "kube-controller-manager", "service account default/default", func() (bool, error) {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
}
