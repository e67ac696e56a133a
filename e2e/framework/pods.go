package framework

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PodReady reports the pod's Ready condition.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// WorkloadPod is a pod bound to node whose one container runs command, or
// the sim echo servers on the given TCP ports when command is empty.
func WorkloadPod(namespace, name, node string, restart corev1.RestartPolicy, command []string, tcpPorts ...int32) *corev1.Pod {
	c := corev1.Container{Name: "workload", Image: "kestrel.dev/sim-workload", Command: command}
	for _, p := range tcpPorts {
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: p, Protocol: corev1.ProtocolTCP})
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       corev1.PodSpec{NodeName: node, RestartPolicy: restart, Containers: []corev1.Container{c}},
	}
}
