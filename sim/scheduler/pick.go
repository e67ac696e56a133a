// Package scheduler is sim's scheduler: it binds each pod that names no node
// to a Ready node that matches its nodeSelector, round-robin. Sim clusters
// have no resource pressure worth modelling, so nothing else is weighed.
package scheduler

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// picker chooses nodes in turn so pods spread evenly across the cluster.
type picker struct {
	next int
}

// pick returns the node for pod among nodes, or an error saying why none fits.
func (p *picker) pick(pod *corev1.Pod, nodes []*corev1.Node) (string, error) {
	selector := labels.SelectorFromSet(pod.Spec.NodeSelector)
	var fit []string
	notReady, unmatched := 0, 0
	for _, n := range nodes {
		switch {
		case !ready(n) || n.Spec.Unschedulable:
			notReady++
		case !selector.Matches(labels.Set(n.Labels)):
			unmatched++
		default:
			fit = append(fit, n.Name)
		}
	}
	if len(fit) == 0 {
		return "", fmt.Errorf("0/%d nodes are available: %d not ready or unschedulable, %d do not match nodeSelector %v",
			len(nodes), notReady, unmatched, pod.Spec.NodeSelector)
	}
	sort.Strings(fit)
	name := fit[p.next%len(fit)]
	p.next++
	return name, nil
}

func ready(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
