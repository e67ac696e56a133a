package runtimefix

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireDocker skips when no docker answers, naming it, except under
// KESTREL_REQUIRE_PRIVILEGED=1 (CI, where make deps installs and starts dockerd).
func requireDocker(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("docker does not answer (%v: %s): run `make deps`", err, strings.TrimSpace(string(out)))
		if os.Getenv("KESTREL_REQUIRE_PRIVILEGED") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// TestPrivilegedContainerRuns is what the fix is for: a --privileged container
// (as kind's nodes are) starts and runs on this host, whichever way its bounding
// set is. The image is one static program (kind/pause), imported for the test.
func TestPrivilegedContainerRuns(t *testing.T) {
	requireDocker(t)
	needed, err := Needed()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "pause"), "../pause")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build pause: %v\n%s", err, out)
	}
	tag := fmt.Sprintf("kestrel-runtimefix-test:%d", os.Getpid())
	imp := exec.Command("sh", "-c", fmt.Sprintf("tar -C %s -c pause | docker import --change 'ENTRYPOINT [\"/pause\"]' - %s", dir, tag))
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v\n%s", err, out)
	}
	defer exec.Command("docker", "rmi", "-f", tag).Run()
	name := fmt.Sprintf("kestrel-runtimefix-test-%d", os.Getpid())
	out, err := exec.Command("docker", "run", "-d", "--privileged", "--name", name, tag).CombinedOutput()
	defer exec.Command("docker", "rm", "-f", name).Run()
	if err != nil {
		t.Fatalf("docker run --privileged (runtime fix needed on this host: %v; run `kestrel kind runtime-fix`): %v\n%s", needed, err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := exec.Command("docker", "inspect", "--format", "{{.State.Status}}", name).Output()
		if err == nil && strings.TrimSpace(string(st)) == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("privileged container not running after 20 s: %q %v", st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// exec goes through the wrapper's other path (the --process file); -d: a
	// second pause started is enough, it never ends.
	if out, err := exec.Command("docker", "exec", "-d", "--privileged", name, "/pause").CombinedOutput(); err != nil {
		t.Fatalf("docker exec --privileged: %v\n%s", err, out)
	}
}
