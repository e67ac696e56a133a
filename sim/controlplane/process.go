package controlplane

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ProcessSpec is a long-running process of a sim cluster, detached from whoever starts
// it: it gets its own session and process group, its output goes to
// STATE/logs/<Name>.log and its pid to STATE/pids/<Name>.pid.
type ProcessSpec struct {
	Name     string // e.g. "etcd", "kube-apiserver", "node-1-agent"
	StateDir string
	Path     string
	Args     []string
	Env      []string // added to the current environment
}

// PIDFile and LogFile are where a process of a cluster records itself.
func PIDFile(stateDir, name string) string {
	return filepath.Join(stateDir, "pids", name+".pid")
}

func LogFile(stateDir, name string) string {
	return filepath.Join(stateDir, "logs", name+".log")
}

// StartProcess starts p unless a process recorded under its name is still running,
// and returns its pid. The process survives the caller.
//
// Every process must name a path under the state dir on its command line: that is how
// a pid read back from a file is told apart from a recycled one.
func StartProcess(p ProcessSpec) (int, error) {
	if !NamesStateDir(p.Args, p.StateDir) {
		return 0, fmt.Errorf("process %s: its arguments must name a path under the state dir %s", p.Name, p.StateDir)
	}
	if pid, ok := RunningPID(p.StateDir, p.Name); ok {
		return pid, nil
	}
	for _, d := range []string{"pids", "logs"} {
		if err := os.MkdirAll(filepath.Join(p.StateDir, d), 0o755); err != nil {
			return 0, err
		}
	}
	logf, err := os.OpenFile(LogFile(p.StateDir, p.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "---- %s start: %s %s\n", time.Now().Format(time.RFC3339), p.Path, strings.Join(p.Args, " "))

	closeInheritedOnExec()
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = p.StateDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", p.Name, err)
	}
	pid := cmd.Process.Pid
	// Reap it if it exits while we live; once we are gone, init does.
	go cmd.Wait() //nolint:errcheck
	if err := writeFileAtomic(PIDFile(p.StateDir, p.Name), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		syscall.Kill(-pid, syscall.SIGKILL)
		return 0, err
	}
	return pid, nil
}

// RunningPID returns the pid recorded for name if that process is alive and is ours.
func RunningPID(stateDir, name string) (int, bool) {
	pid, err := readPID(PIDFile(stateDir, name))
	if err != nil {
		return 0, false
	}
	return pid, isOurs(pid, stateDir)
}

// StopProcess ends the process group recorded for name: SIGTERM, then SIGKILL once
// grace has passed. It removes the pid file. A missing pid file, or one naming a
// process that is gone or is not ours, is not an error.
func StopProcess(stateDir, name string, grace time.Duration) error {
	file := PIDFile(stateDir, name)
	pid, err := readPID(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil && isOurs(pid, stateDir) {
		if err := killGroup(pid, grace); err != nil {
			return fmt.Errorf("stop %s (pid %d): %w", name, pid, err)
		}
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// killGroup signals the process group led by pid (processes are started with setsid,
// so the group id is the pid) and waits until its leader and the rest of the
// group are gone.
func killGroup(pid int, grace time.Duration) error {
	signal := func(sig syscall.Signal) {
		if err := syscall.Kill(-pid, sig); errors.Is(err, syscall.ESRCH) {
			syscall.Kill(pid, sig)
		}
	}
	signal(syscall.SIGTERM)
	if waitGone(pid, grace) {
		return nil
	}
	signal(syscall.SIGKILL)
	if waitGone(pid, 5*time.Second) {
		return nil
	}
	return errors.New("still alive after SIGKILL")
}

// waitGone waits until pid is gone and no process is left in its group.
func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if !alive(pid) && !groupAlive(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupAlive reports whether process group pgid still has a member that is
// not a zombie.
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	pids, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range pids {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(p); err == nil && g == pgid && alive(p) {
			return true
		}
	}
	return false
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	state := stat[i+2]
	return state != 'Z' && state != 'X'
}

// isOurs reports whether pid is alive and its command line names a path under stateDir, which
// every process we start does; a pid recycled by an unrelated process does not.
func isOurs(pid int, stateDir string) bool {
	var cmdline []byte
	// A process in the middle of execve shows an empty command line for a
	// moment (a kernel thread always does): look again before deciding.
	for try := 0; len(cmdline) == 0; try++ {
		if !alive(pid) || try == 10 {
			return false
		}
		if try > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		var err error
		if cmdline, err = os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil {
			return false
		}
	}
	return NamesStateDir(strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00"), stateDir)
}

// NamesStateDir reports whether an argument is the state dir or a path under it
// (also as the value of a --flag=value). Comparing whole paths keeps cluster
// "a" from claiming the processes of cluster "ab".
func NamesStateDir(args []string, stateDir string) bool {
	dir := filepath.Clean(stateDir)
	for _, a := range args {
		if _, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(a, "-") {
			a = v
		}
		if a == dir || strings.HasPrefix(a, dir+"/") {
			return true
		}
	}
	return false
}

func readPID(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("%s: not a pid: %q", file, strings.TrimSpace(string(b)))
	}
	return pid, nil
}

func writeFileAtomic(file string, data []byte, perm os.FileMode) error {
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// logTail returns the last lines of a process's log, to explain why it died.
func logTail(stateDir, name string, lines int) string {
	b, err := os.ReadFile(LogFile(stateDir, name))
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// closeInheritedOnExec marks every descriptor above stderr close-on-exec.
// Go opens its own files that way, but descriptors this process inherited
// (a lock `flock FILE kestrel sim up` holds, say) would otherwise pass on
// to the cluster's long-lived processes and outlive the command that took
// them: a left-up etcd would hold the lock for ever.
func closeInheritedOnExec() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}
