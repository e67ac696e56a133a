package kubelet

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kestrelnet/kestrel/sim/cgroups"
	"github.com/kestrelnet/kestrel/sim/network"
	"github.com/kestrelnet/kestrel/sim/workload"
)

// proc is one container's process.
type proc struct {
	pid      int
	started  time.Time
	done     chan struct{} // closed when the process has ended
	exitCode int           // valid once done; -1 when unknown (adopted)
	finished time.Time
	// The container's probes, for this run of it (probes.go).
	readiness, liveness probeState
}

// containerArgv is what runs for a container: its command if it has one,
// else the built-in echo servers on its declared ports (json-mock's answers
// for a json-mock image, workload.ServerOfImage), told their namespace
// so that ps (and sim's leftover check) shows which cluster they belong to.
func containerArgv(kestrelBin, netnsName string, pod *corev1.Pod, c corev1.Container) []string {
	if len(c.Command) > 0 {
		return append(append([]string{}, c.Command...), c.Args...)
	}
	argv := []string{kestrelBin, "sim", "workload", "--pod", pod.Namespace + "/" + pod.Name,
		"--ports", workload.FormatPorts(workloadPorts(c)), "--netns", netnsName}
	if srv := workload.ServerOfImage(c.Image); srv != workload.ServerEcho {
		argv = append(argv, "--server", srv)
	}
	return argv
}

// workloadPorts are a container's ports as the workload serves them; ports
// named http* get HTTP, kafka* a Kafka broker.
func workloadPorts(c corev1.Container) []workload.Port {
	var ports []workload.Port
	for _, p := range c.Ports {
		proto := string(p.Protocol)
		if proto == "" {
			proto = "TCP"
		}
		ports = append(ports, workload.Port{Number: int(p.ContainerPort), Protocol: proto,
			HTTP:  proto == "TCP" && strings.HasPrefix(p.Name, "http"),
			Kafka: proto == "TCP" && strings.HasPrefix(p.Name, "kafka")})
	}
	return ports
}

// startProcess runs argv inside the pod's namespace through `ip netns exec`,
// in its own session so stopping it reaches its children too, and in the
// pod's cgroup when it has one (cgroupDir), which its children inherit. It
// is not tied to the kubelet's life: a restarted kubelet adopts it by pid.
func startProcess(netnsName, cgroupDir string, argv []string, env []corev1.EnvVar, logFile string) (*proc, error) {
	logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "---- %s start in %s: %q\n", time.Now().Format(time.RFC3339), netnsName, argv)
	cmd := exec.Command("ip", append([]string{"netns", "exec", netnsName}, argv...)...)
	cmd.Env = os.Environ()
	for _, e := range env {
		cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if cgroupDir != "" {
		release, err := cgroups.Place(cmd, cgroupDir)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %q: %w", argv, err)
	}
	p := &proc{pid: cmd.Process.Pid, started: time.Now(), done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.exitCode = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.exitCode = ee.ExitCode()
		}
		p.finished = time.Now()
		close(p.done)
	}()
	return p, nil
}

// adoptProcess takes over a process a previous kubelet started, if it still
// runs in the pod's namespace: matching the namespace tells it apart from an
// unrelated process that got the same pid.
func adoptProcess(pid int, netnsName string) (*proc, bool) {
	if !network.InNetns(pid, netnsName) {
		return nil, false
	}
	p := &proc{pid: pid, started: time.Now(), done: make(chan struct{}), exitCode: -1}
	go func() {
		for syscall.Kill(pid, 0) == nil && network.InNetns(pid, netnsName) {
			time.Sleep(time.Second)
		}
		p.finished = time.Now()
		close(p.done)
	}()
	return p, true
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	signal := func(sig syscall.Signal) {
		if syscall.Kill(-p.pid, sig) != nil {
			syscall.Kill(p.pid, sig)
		}
	}
	if !p.running() {
		return
	}
	signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// WorkloadPorts are a container's ports as the built-in servers serve them; other
// clusters' runners (scenarios/kindmode) start the same servers from them.
func WorkloadPorts(c corev1.Container) []workload.Port { return workloadPorts(c) }
