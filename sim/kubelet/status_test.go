package kubelet

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func statusPod(policy corev1.RestartPolicy) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1"},
		Spec: corev1.PodSpec{RestartPolicy: policy, Containers: []corev1.Container{
			{Name: "a", Image: "img"}, {Name: "b", Image: "img"}}},
	}
}

func conditionOf(st corev1.PodStatus, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range st.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

func TestStatusIsRunningAndReadyOnlyWhenEveryContainerAnswers(t *testing.T) {
	now := time.Now()
	pod := statusPod(corev1.RestartPolicyAlways)
	v := podView{HostIPs: []string{"172.30.0.11", "fd00:172:30::11"}, IPs: []string{"10.244.0.5", "fd00:10:244::5"}, StartTime: now, Containers: map[string]containerView{
		"a": {Running: true, Ready: true, StartedAt: now},
		"b": {Running: true, Ready: false, StartedAt: now},
	}}
	st := podStatus(pod, v)
	if st.Phase != corev1.PodRunning || st.PodIP != "10.244.0.5" || st.HostIP != "172.30.0.11" {
		t.Errorf("status = %+v", st)
	}
	// Dual-stack: both families, IPv4 first, as the API requires podIPs[0] == podIP.
	if len(st.PodIPs) != 2 || st.PodIPs[0].IP != "10.244.0.5" || st.PodIPs[1].IP != "fd00:10:244::5" {
		t.Errorf("podIPs = %v", st.PodIPs)
	}
	if len(st.HostIPs) != 2 || st.HostIPs[0].IP != "172.30.0.11" || st.HostIPs[1].IP != "fd00:172:30::11" {
		t.Errorf("hostIPs = %v", st.HostIPs)
	}
	if conditionOf(st, corev1.PodReady) != corev1.ConditionFalse {
		t.Errorf("Ready with container b not answering")
	}
	v.Containers["b"] = containerView{Running: true, Ready: true, StartedAt: now}
	pod.Status = podStatus(pod, v)
	if conditionOf(pod.Status, corev1.PodReady) != corev1.ConditionTrue || !pod.Status.ContainerStatuses[1].Ready {
		t.Errorf("not Ready with every container answering: %+v", pod.Status.Conditions)
	}
	// Nothing changed, so nothing should be written.
	again := podStatus(pod, v)
	for i := range again.Conditions {
		if !again.Conditions[i].LastTransitionTime.Equal(&pod.Status.Conditions[i].LastTransitionTime) {
			t.Errorf("condition %s moved its transition time", again.Conditions[i].Type)
		}
	}
}

func TestExitedContainersEndThePodPerRestartPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy corev1.RestartPolicy
		codes  [2]int
		want   corev1.PodPhase
	}{
		{corev1.RestartPolicyNever, [2]int{0, 0}, corev1.PodSucceeded},
		{corev1.RestartPolicyNever, [2]int{0, 1}, corev1.PodFailed},
		{corev1.RestartPolicyOnFailure, [2]int{0, 0}, corev1.PodSucceeded},
		{corev1.RestartPolicyAlways, [2]int{0, 0}, corev1.PodRunning},
	} {
		v := podView{HostIPs: []string{"h"}, IPs: []string{"10.244.0.5"}, Containers: map[string]containerView{
			"a": {Exited: true, ExitCode: tc.codes[0]},
			"b": {Exited: true, ExitCode: tc.codes[1]},
		}}
		if got := podStatus(statusPod(tc.policy), v).Phase; got != tc.want {
			t.Errorf("policy %s, exits %v: phase %s, want %s", tc.policy, tc.codes, got, tc.want)
		}
	}
}

func TestASandboxFailureIsShownOnThePendingPod(t *testing.T) {
	st := podStatus(statusPod(corev1.RestartPolicyAlways), podView{HostIPs: []string{"h"}, Containers: map[string]containerView{},
		FailReason: "FailedCreatePodSandBox", FailMessage: "CNI ADD: agent down"})
	if st.Phase != corev1.PodPending || st.Message != "CNI ADD: agent down" {
		t.Errorf("status = %s %q", st.Phase, st.Message)
	}
	for _, c := range st.Conditions {
		if c.Type == corev1.PodReadyToStartContainers && (c.Status != corev1.ConditionFalse || c.Message != "CNI ADD: agent down") {
			t.Errorf("PodReadyToStartContainers = %+v", c)
		}
	}
}
