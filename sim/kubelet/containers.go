package kubelet

import (
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/types"

	corev1 "k8s.io/api/core/v1"
)

// stopGrace is how long a workload gets between SIGTERM and SIGKILL; sim
// workloads exit at once, and deletions should not wait on them.
const stopGrace = 2 * time.Second

// Restart backoff doubles from restartBase up to restartMax.
const (
	restartBase = time.Second
	restartMax  = 30 * time.Second
)

// ensureContainers starts containers that are not running and may run:
// new ones, adopted ones whose process is gone, and exited ones the restart
// policy brings back after their backoff. It returns how long until a
// pending restart is due (0 if none).
func (k *Kubelet) ensureContainers(pod *corev1.Pod, st *podState) time.Duration {
	var wait time.Duration
	for _, c := range pod.Spec.Containers {
		p := st.procs[c.Name]
		if p == nil {
			if pid, ok := st.rec.PIDs[c.Name]; ok {
				if adopted, ok := adoptProcess(pid, st.rec.Netns); ok {
					st.procs[c.Name] = adopted
					k.notifyExit(pod, adopted)
					continue
				}
			}
		} else if p.running() {
			continue
		} else if !mayRestart(pod.Spec.RestartPolicy, p.exitCode) {
			continue
		} else if due := restartDelay(st.restarts[c.Name]) - time.Since(p.finished); due > 0 {
			if wait == 0 || due < wait {
				wait = due
			}
			continue
		} else {
			st.restarts[c.Name]++
		}
		if err := k.startContainer(pod, st, c); err != nil {
			k.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "container %s: %v", c.Name, err)
			k.log.Warn("cannot start container", "pod", st.rec.key(), "container", c.Name, "err", err)
		}
	}
	return wait
}

func (k *Kubelet) startContainer(pod *corev1.Pod, st *podState, c corev1.Container) error {
	argv := containerArgv(k.opts.KestrelBin, st.rec.Netns, pod, c)
	p, err := startProcess(st.rec.Netns, k.podCgroup(pod.UID), argv, c.Env, k.recs.logFile(pod.UID, c.Name))
	if err != nil {
		return err
	}
	st.procs[c.Name] = p
	st.rec.PIDs[c.Name] = p.pid
	if err := k.recs.save(st.rec); err != nil {
		k.log.Warn("cannot save pod record; a restarted kubelet will not adopt this process", "err", err)
	}
	k.recorder.Eventf(pod, corev1.EventTypeNormal, "Started", "container %s: pid %d: %q", c.Name, p.pid, argv)
	k.notifyExit(pod, p)
	return nil
}

// notifyExit resyncs the pod when the process ends, so its status follows.
func (k *Kubelet) notifyExit(pod *corev1.Pod, p *proc) {
	key := pod.Namespace + "/" + pod.Name
	go func() {
		<-p.done
		k.queue.Add(key)
	}()
}

func mayRestart(policy corev1.RestartPolicy, exitCode int) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	}
	return true
}

func restartDelay(restarts int32) time.Duration {
	d := restartBase
	for i := int32(0); i < restarts && d < restartMax; i++ {
		d *= 2
	}
	return min(d, restartMax)
}

// view gathers what the status needs: addresses and each container's
// process, probing the ports of running ones.
func (k *Kubelet) view(pod *corev1.Pod, st *podState) podView {
	v := podView{HostIPs: k.hostIPs(), IPs: st.rec.IPs, Containers: map[string]containerView{}}
	for _, c := range pod.Spec.Containers {
		p := st.procs[c.Name]
		if p == nil {
			continue
		}
		cv := containerView{StartedAt: p.started, Restarts: st.restarts[c.Name]}
		if v.StartTime.IsZero() || p.started.Before(v.StartTime) {
			v.StartTime = p.started
		}
		if p.running() {
			cv.Running = true
			switch {
			case c.ReadinessProbe != nil:
				cv.Ready = p.readiness.ok
			case len(v.IPs) > 0:
				cv.Ready = portsReady(st.rec.Netns, v.IPs[0], c) == nil
			}
		} else {
			cv.Exited, cv.ExitCode, cv.FinishedAt = true, p.exitCode, p.finished
		}
		v.Containers[c.Name] = cv
	}
	return v
}

// podCgroup is the pod's cgroup directory, "" when pods get none.
func (k *Kubelet) podCgroup(uid types.UID) string {
	if k.opts.CgroupDir == "" {
		return ""
	}
	return filepath.Join(k.opts.CgroupDir, "pod-"+string(uid))
}
