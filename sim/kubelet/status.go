package kubelet

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// containerView is what the kubelet knows of one container's process.
type containerView struct {
	Running    bool
	Ready      bool // its ports accept connections
	StartedAt  time.Time
	Exited     bool // it ran and ended, and is not running now
	ExitCode   int
	FinishedAt time.Time
	Restarts   int32
}

// podView is the kubelet's view of one pod, from which its status is written.
type podView struct {
	HostIPs    []string // the node's addresses, IPv4 first
	IPs        []string
	StartTime  time.Time
	Containers map[string]containerView
	// Failure, when set, is why the pod could not be set up (reason, message).
	FailReason, FailMessage string
}

// podStatus turns a view into the status the API shows. Earlier transition
// times are kept when a condition does not change, so an unchanged pod yields
// an identical status and costs no write.
func podStatus(pod *corev1.Pod, v podView) corev1.PodStatus {
	old := pod.Status
	st := corev1.PodStatus{
		QOSClass:  old.QOSClass,
		StartTime: old.StartTime,
	}
	if len(v.HostIPs) > 0 {
		st.HostIP = v.HostIPs[0]
		for _, ip := range v.HostIPs {
			st.HostIPs = append(st.HostIPs, corev1.HostIP{IP: ip})
		}
	}
	if st.StartTime == nil && !v.StartTime.IsZero() {
		st.StartTime = seconds(v.StartTime)
	}
	if len(v.IPs) > 0 {
		st.PodIP = v.IPs[0]
		for _, ip := range v.IPs {
			st.PodIPs = append(st.PodIPs, corev1.PodIP{IP: ip})
		}
	}
	allReady, anyRunning, allExited, allSucceeded := len(pod.Spec.Containers) > 0, false, true, true
	for _, c := range pod.Spec.Containers {
		cv := v.Containers[c.Name]
		st.ContainerStatuses = append(st.ContainerStatuses, containerStatus(pod, c, cv))
		allReady = allReady && cv.Running && cv.Ready
		anyRunning = anyRunning || cv.Running
		allExited = allExited && cv.Exited
		allSucceeded = allSucceeded && cv.Exited && cv.ExitCode == 0
	}
	switch {
	case allExited && pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
		st.Phase = corev1.PodSucceeded
		if !allSucceeded {
			st.Phase = corev1.PodFailed
		}
	case allSucceeded && pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure:
		st.Phase = corev1.PodSucceeded
	case anyRunning || allExited:
		st.Phase = corev1.PodRunning
	default:
		st.Phase = corev1.PodPending
	}
	if st.Phase == corev1.PodPending && v.FailReason != "" {
		st.Reason, st.Message = v.FailReason, v.FailMessage
	}

	sandbox := condition(corev1.PodReadyToStartContainers, len(v.IPs) > 0, v.FailReason, v.FailMessage)
	ready := condition(corev1.ContainersReady, allReady, "ContainersNotReady", notReadyMessage(pod, v))
	st.Conditions = []corev1.PodCondition{
		condition(corev1.PodScheduled, true, "", ""),
		sandbox,
		condition(corev1.PodInitialized, true, "", ""),
		ready,
		condition(corev1.PodReady, allReady, ready.Reason, ready.Message),
	}
	for i := range st.Conditions {
		st.Conditions[i].LastTransitionTime = transitionTime(old.Conditions, st.Conditions[i])
	}
	return st
}

func containerStatus(pod *corev1.Pod, c corev1.Container, cv containerView) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{
		Name:         c.Name,
		Image:        c.Image,
		ImageID:      "kestrel-sim://" + c.Image,
		ContainerID:  "kestrel-sim://" + string(pod.UID) + "/" + c.Name,
		Ready:        cv.Running && cv.Ready,
		Started:      &cv.Running,
		RestartCount: cv.Restarts,
	}
	switch {
	case cv.Running:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: *seconds(cv.StartedAt)}
	case cv.Exited:
		reason := "Completed"
		if cv.ExitCode != 0 {
			reason = "Error"
		}
		cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: int32(cv.ExitCode), Reason: reason,
			StartedAt: *seconds(cv.StartedAt), FinishedAt: *seconds(cv.FinishedAt)}
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	return cs
}

func notReadyMessage(pod *corev1.Pod, v podView) string {
	var waiting []string
	for _, c := range pod.Spec.Containers {
		cv := v.Containers[c.Name]
		if !cv.Running || !cv.Ready {
			waiting = append(waiting, c.Name)
		}
	}
	if len(waiting) == 0 {
		return ""
	}
	msg := "containers with unready status: ["
	for i, w := range waiting {
		if i > 0 {
			msg += " "
		}
		msg += w
	}
	return msg + "]"
}

func condition(t corev1.PodConditionType, ok bool, reason, msg string) corev1.PodCondition {
	if ok {
		return corev1.PodCondition{Type: t, Status: corev1.ConditionTrue}
	}
	return corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, Message: msg}
}

func transitionTime(old []corev1.PodCondition, c corev1.PodCondition) metav1.Time {
	for _, o := range old {
		if o.Type == c.Type && o.Status == c.Status && !o.LastTransitionTime.IsZero() {
			return o.LastTransitionTime
		}
	}
	return *seconds(time.Now())
}

// seconds truncates to what the API stores, so a status read back compares equal.
func seconds(t time.Time) *metav1.Time {
	m := metav1.NewTime(t.Truncate(time.Second))
	return &m
}
