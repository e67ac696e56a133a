package kubelet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kestrelnet/kestrel/sim/cgroups"
)

// A container's readinessProbe and livenessProbe run as a real kubelet runs
// them: TCP and HTTP probes from the node's network namespace (where the
// kubelet lives) to the pod's address, so they cross the pod's datapath as
// the host identity, which is why allow-localhost exists; exec probes run
// the command inside the pod's namespace. Timing and thresholds follow the
// Probe fields and their Kubernetes defaults.

// runProbes runs the probes that are due for the pod's running containers
// and stops a container whose liveness probe failed (its restart policy then
// decides). It returns how long until the next probe is due (0 if none).
func (k *Kubelet) runProbes(ctx context.Context, pod *corev1.Pod, st *podState) time.Duration {
	if len(st.rec.IPs) == 0 {
		return 0
	}
	var next time.Duration
	later := func(d time.Duration) {
		if next == 0 || d < next {
			next = d
		}
	}
	for _, c := range pod.Spec.Containers {
		p := st.procs[c.Name]
		if p == nil || !p.running() {
			continue
		}
		for _, kind := range []struct {
			name     string
			probe    *corev1.Probe
			state    *probeState
			restarts bool // failing it stops the container
		}{{"Readiness", c.ReadinessProbe, &p.readiness, false}, {"Liveness", c.LivenessProbe, &p.liveness, true}} {
			if kind.probe == nil {
				continue
			}
			now := time.Now()
			if due, wait := kind.state.due(kind.probe, p.started, now); !due {
				later(wait)
				continue
			}
			err := runProbe(ctx, kind.probe, c, st.rec.IPs[0], st.rec.Netns, k.podCgroup(pod.UID))
			kind.state.record(kind.probe, err, now)
			later(probeSeconds(withDefault(kind.probe.PeriodSeconds, 10)))
			if err != nil {
				k.recorder.Eventf(pod, corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %v", kind.name, err)
			}
			if kind.restarts && kind.state.failures >= withDefault(kind.probe.FailureThreshold, 3) {
				k.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing", "Container %s failed liveness probe, will be restarted", c.Name)
				p.stop(stopGrace)
				break
			}
		}
	}
	return next
}

// probeState is one probe's history for one run of a container; a restarted
// container starts with fresh state, as in Kubernetes.
type probeState struct {
	last      time.Time // when it last ran
	successes int32     // consecutive
	failures  int32     // consecutive
	ok        bool      // the verdict once thresholds are applied
	message   string    // why the last run failed
}

func withDefault(v, def int32) int32 {
	if v <= 0 {
		return def
	}
	return v
}

func probeSeconds(n int32) time.Duration { return time.Duration(n) * time.Second }

// due reports whether the probe should run now, or else how long until it should.
func (s *probeState) due(p *corev1.Probe, started, now time.Time) (bool, time.Duration) {
	next := started.Add(probeSeconds(p.InitialDelaySeconds))
	if !s.last.IsZero() {
		next = s.last.Add(probeSeconds(withDefault(p.PeriodSeconds, 10)))
	}
	if wait := next.Sub(now); wait > 0 {
		return false, wait
	}
	return true, 0
}

// record applies one run's result: ok flips after successThreshold
// consecutive successes or failureThreshold consecutive failures.
func (s *probeState) record(p *corev1.Probe, err error, now time.Time) {
	s.last = now
	if err == nil {
		s.successes++
		s.failures = 0
		if s.successes >= withDefault(p.SuccessThreshold, 1) {
			s.ok = true
		}
		return
	}
	s.failures++
	s.successes = 0
	s.message = err.Error()
	if s.failures >= withDefault(p.FailureThreshold, 3) {
		s.ok = false
	}
}

// runProbe runs one probe of container c once. An exec probe runs inside the
// pod, as in its container: its namespace and its cgroup (cgroupDir, if any).
func runProbe(ctx context.Context, p *corev1.Probe, c corev1.Container, podIP, netnsName, cgroupDir string) error {
	timeout := probeSeconds(withDefault(p.TimeoutSeconds, 1))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.TCPSocket != nil:
		port, err := probePort(p.TCPSocket.Port, c)
		if err != nil {
			return err
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(hostOr(p.TCPSocket.Host, podIP), strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	case p.HTTPGet != nil:
		return httpProbe(ctx, p.HTTPGet, c, podIP)
	case p.Exec != nil:
		if len(p.Exec.Command) == 0 {
			return errors.New("exec probe without a command")
		}
		argv := append([]string{"netns", "exec", netnsName}, p.Exec.Command...)
		cmd := exec.CommandContext(ctx, "ip", argv...)
		if cgroupDir != "" {
			release, err := cgroups.Place(cmd, cgroupDir)
			if err != nil {
				return err
			}
			defer release()
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%q: %v: %s", p.Exec.Command, err, strings.TrimSpace(string(out)))
		}
		return nil
	case p.GRPC != nil:
		return errors.New("gRPC probes are not supported by the sim kubelet")
	}
	return errors.New("probe has no handler")
}

func httpProbe(ctx context.Context, g *corev1.HTTPGetAction, c corev1.Container, podIP string) error {
	port, err := probePort(g.Port, c)
	if err != nil {
		return err
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := scheme + "://" + net.JoinHostPort(hostOr(g.Host, podIP), strconv.Itoa(port)) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "kube-probe/sim")
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
		} else {
			req.Header.Add(h.Name, h.Value)
		}
	}
	// Redirects are not followed: a 3xx is a success, as for the kubelet
	// when the redirect leaves the host.
	client := http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	}
	return nil
}

func hostOr(host, podIP string) string {
	if host != "" {
		return host
	}
	return podIP
}

// probePort resolves a probe's port, by number or by the name of one of
// the container's ports.
func probePort(port intstr.IntOrString, c corev1.Container) (int, error) {
	if port.Type == intstr.Int {
		if port.IntVal <= 0 || port.IntVal > 65535 {
			return 0, fmt.Errorf("invalid port %d", port.IntVal)
		}
		return int(port.IntVal), nil
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil && n > 0 && n <= 65535 {
		return n, nil
	}
	return 0, fmt.Errorf("container %s has no port named %q", c.Name, port.StrVal)
}
