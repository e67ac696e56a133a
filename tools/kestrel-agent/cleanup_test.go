package main

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The cleanup pod has a volume mounted on the socket's directory, which cannot
// be removed from inside the pod (EBUSY): the cleanup must empty it and go on,
// or its init container fails on every node and uninstall never finishes.
func TestRemoveStateEmptiesAMountPoint(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root to mount a tmpfs: run the tests as root")
	}
	run := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", run, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", run, err)
	}
	t.Cleanup(func() { _ = unix.Unmount(run, unix.MNT_DETACH) })
	for _, f := range []string{"agent.sock", "endpoints.json", "sub/x"} {
		p := filepath.Join(run, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(run); err == nil {
		t.Fatal("removing a mount point succeeded: the test does not reproduce the pod's EBUSY")
	}
	emptied, err := removeState(run)
	if err != nil {
		t.Fatalf("removeState on a mount point: %v", err)
	}
	if !emptied {
		t.Error("removeState says it removed a mount point")
	}
	if left, err := os.ReadDir(run); err != nil || len(left) != 0 {
		t.Errorf("left in %s: %v (%v)", run, left, err)
	}

	plain := filepath.Join(t.TempDir(), "ipam")
	if err := os.MkdirAll(filepath.Join(plain, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	if emptied, err := removeState(plain); err != nil || emptied {
		t.Fatalf("removeState on a plain directory: emptied %v, %v", emptied, err)
	}
	if _, err := os.Stat(plain); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", plain, err)
	}
}
