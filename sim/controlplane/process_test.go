package controlplane

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStopProcessEndsTheWholeGroupAndForgetsIt(t *testing.T) {
	state := t.TempDir()
	child := filepath.Join(state, "child.pid")
	// The shell forks sleep, so the group holds two processes; $0 names the state dir.
	pid, err := StartProcess(ProcessSpec{
		Name: "sleeper", StateDir: state, Path: "/bin/sh",
		Args: []string{"-c", "sleep 300 & echo $! > " + child + "; wait", filepath.Join(state, "sleeper")},
	})
	if err != nil {
		t.Fatal(err)
	}
	childPID := waitPIDFile(t, child)
	if got, ok := RunningPID(state, "sleeper"); !ok || got != pid {
		t.Fatalf("RunningPID = %d, %v; want %d, true", got, ok, pid)
	}
	if again, err := StartProcess(ProcessSpec{Name: "sleeper", StateDir: state, Path: "/bin/false", Args: []string{state + "/x"}}); err != nil || again != pid {
		t.Fatalf("a second start = %d, %v; want the running %d kept", again, err, pid)
	}

	if err := StopProcess(state, "sleeper", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{pid, childPID} {
		if alive(p) {
			t.Errorf("pid %d still alive after StopProcess", p)
		}
	}
	if _, err := os.Stat(PIDFile(state, "sleeper")); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
	if err := StopProcess(state, "sleeper", time.Second); err != nil {
		t.Errorf("second StopProcess: %v", err)
	}
}

func TestStopProcessLeavesARecycledPIDAlone(t *testing.T) {
	state := t.TempDir()
	// This test's own pid stands for a pid the kernel gave to an unrelated process.
	if err := os.MkdirAll(filepath.Join(state, "pids"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(PIDFile(state, "etcd"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := RunningPID(state, "etcd"); ok {
		t.Fatal("RunningPID claims a process whose command line does not name the state dir")
	}
	if err := StopProcess(state, "etcd", time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(PIDFile(state, "etcd")); !os.IsNotExist(err) {
		t.Errorf("stale pid file left behind: %v", err)
	}
}

func TestStartProcessRefusesACommandLineWithoutTheStateDir(t *testing.T) {
	if _, err := StartProcess(ProcessSpec{Name: "x", StateDir: t.TempDir(), Path: "/bin/true"}); err == nil {
		t.Fatal("started a process Stop could not recognise")
	}
}

func waitPIDFile(t *testing.T, file string) int {
	t.Helper()
	for range 100 {
		if b, err := os.ReadFile(file); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never written", file)
	return 0
}

func TestACommandLineNamesItsClusterOnlyByWholePaths(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want bool
	}{
		{"the state dir itself", []string{"--state-dir", "/run/k/a"}, true},
		{"a file under it", []string{"--socket", "/run/k/a/nodes/n/agent.sock"}, true},
		{"a flag=value form", []string{"--kubeconfig=/run/k/a/kubeconfig"}, true},
		{"a sibling cluster's dir", []string{"--state-dir", "/run/k/ab"}, false},
		{"no path at all", []string{"serve"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := NamesStateDir(c.args, "/run/k/a"); got != c.want {
				t.Fatalf("NamesStateDir(%v) = %v, want %v", c.args, got, c.want)
			}
		})
	}
}

// Right after StartProcess the child may still be inside execve, with an empty
// command line: it must count as running (it once made `sim up` report a live
// etcd as exited, and leak it).
func TestAProcessIsRecognisedTheMomentItStarts(t *testing.T) {
	state := t.TempDir()
	for i := range 50 {
		name := "p" + strconv.Itoa(i)
		pid, err := StartProcess(ProcessSpec{Name: name, StateDir: state, Path: "/bin/sh",
			Args: []string{"-c", "sleep 30", filepath.Join(state, name)}})
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := RunningPID(state, name); !ok || got != pid {
			t.Fatalf("start %d: RunningPID = %d, %v right after starting pid %d", i, got, ok, pid)
		}
		if err := StopProcess(state, name, time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// A descriptor this process inherited without close-on-exec (as from
// `flock FILE kestrel sim up`) must not reach the cluster's processes: a
// left-up etcd would hold the lock after the command ended.
func TestStartedProcessesInheritNoExtraDescriptors(t *testing.T) {
	state := t.TempDir()
	fd, err := syscall.Open(filepath.Join(state, "lock"), syscall.O_CREAT|syscall.O_RDWR, 0o600) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	out := filepath.Join(state, "fds")
	if _, err := StartProcess(ProcessSpec{Name: "lister", StateDir: state, Path: "/bin/sh",
		Args: []string{"-c", "ls /proc/$$/fd > " + out + ".tmp && mv " + out + ".tmp " + out, filepath.Join(state, "lister")}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var fds []byte
	for time.Now().Before(deadline) {
		if fds, err = os.ReadFile(out); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(fds)) {
		if f == strconv.Itoa(fd) {
			t.Fatalf("the started process holds inherited descriptor %d (its descriptors: %s)", fd, strings.Fields(string(fds)))
		}
	}
}
