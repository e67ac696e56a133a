package sim

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kestrelnet/kestrel/scenarios/engine"
)

type session struct {
	r        *Runner
	scenario string
	nodes    nodeMap // set by Sync
	// frontends are the ClusterIP frontends of the last Sync and their
	// backends, so a service probe's translated flows can be found;
	// svcBackends are every backend of each service ("namespace/name").
	frontends   map[string][]netip.AddrPort
	svcBackends map[string][]netip.AddrPort
	cluster     *engine.Cluster // as of the last Sync, in the scenario's addresses

	worldMu sync.Mutex // batched probes add world source addresses at once
	world   *world
	dns     *dnsServer // the cluster DNS (dns.go)
	// addrs maps scenario pod addresses to live ones on a PodExec
	// backend (addrmap.go); nil elsewhere.
	addrs addrMap
}

// Objects stay for the next scenario's Sync to reuse or remove; the world
// servers and addresses of the outside host go with the scenario.
func (s *session) Close() error {
	s.stopDNS()
	s.worldMu.Lock()
	defer s.worldMu.Unlock()
	if s.world == nil {
		return nil
	}
	return s.world.close()
}

// Sync applies c, waits until every pod is Ready at its address, then until
// every node's agent has put the resulting state in its datapath.
func (s *session) Sync(ctx context.Context, c *engine.Cluster) error {
	nodes, err := s.r.mapNodes(ctx, c)
	if err != nil {
		return err
	}
	frontends, bySvc, err := expectedFrontends(c)
	if err != nil {
		return err
	}
	s.cluster = c
	s.worldMu.Lock()
	if len(c.World) > 0 || s.world != nil {
		var w *world
		if w, err = s.worldLocked("spec.world servers"); err == nil {
			err = w.sync(c.World)
		}
	}
	s.worldMu.Unlock()
	if err != nil {
		return err
	}
	if c, err = nodes.placePods(s.r.backend, c); err != nil {
		return err
	}
	s.nodes = nodes
	if pe, live := s.r.backend.(PodExec); live {
		// In the scenario's addresses: probes map them (execprobe.go).
		s.frontends, s.svcBackends = frontends, bySvc
		return s.syncLive(ctx, c, pe)
	}
	if err := s.r.apply(ctx, c); err != nil {
		return err
	}
	if err := s.r.waitPodsReady(ctx, c.Pods); err != nil {
		return err
	}
	if err := s.syncDNS(c); err != nil {
		return err
	}
	rev, err := s.r.bumpMarkers(ctx)
	if err != nil {
		return err
	}
	if err := s.r.waitAgents(ctx, rev); err != nil {
		return err
	}
	s.frontends = frontends
	s.svcBackends = bySvc
	return s.r.waitServices(ctx, frontends)
}

const readyTimeout = 90 * time.Second

func (r *Runner) waitPodsReady(ctx context.Context, pods []*corev1.Pod) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		var waiting []string
		for _, want := range pods {
			key := want.Namespace + "/" + want.Name
			live := r.live.pods[key]
			if live.uid != "" {
				continue
			}
			pod, err := r.kube.CoreV1().Pods(want.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("pod %s: %w", key, err)
			}
			if !podReady(pod) {
				if why := podStuck(pod); why != "" {
					return fmt.Errorf("pod %s cannot start: %s", key, why)
				}
				waiting = append(waiting, key+" ("+podState(pod)+")")
				continue
			}
			// The sim is dual-stack: a pod of an IPv4-only scenario also
			// gets an IPv6 address, which no probe of that scenario uses.
			// A PodExec cluster's CNI chooses the addresses (addrmap.go).
			_, chosen := r.backend.(PodExec)
			for _, w := range want.Status.PodIPs {
				if chosen {
					break
				}
				if !slices.ContainsFunc(pod.Status.PodIPs, func(ip corev1.PodIP) bool { return ip.IP == w.IP }) {
					return fmt.Errorf("pod %s got addresses %s, the scenario asks for %s", key, podIPList(pod), podIPList(want))
				}
			}
			live.uid = string(pod.UID)
			for _, ip := range pod.Status.PodIPs {
				live.ips = append(live.ips, ip.IP)
			}
			r.live.pods[key] = live
		}
		if len(waiting) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pods not Ready after %s: %s", readyTimeout, strings.Join(waiting, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podStuck says why a pod will not start without help (its image cannot be
// had: a cluster whose nodes lack the workload image); "" otherwise. Waiting
// out readyTimeout for it in every scenario would cost minutes each.
func podStuck(p *corev1.Pod) string {
	for _, c := range p.Status.ContainerStatuses {
		if w := c.State.Waiting; w != nil {
			switch w.Reason {
			case "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName":
				return fmt.Sprintf("container %s: %s: image %s: %s", c.Name, w.Reason, c.Image, w.Message)
			}
		}
	}
	return ""
}

func podState(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Message != "" {
			return c.Message
		}
	}
	if p.Spec.NodeName == "" {
		return "not scheduled"
	}
	return string(p.Status.Phase)
}

// waitAgents waits until every node's agent reports a policy revision at or
// past rev: then everything written before rev is enforced (marker.go).
func (r *Runner) waitAgents(ctx context.Context, rev uint64) error {
	agents, err := r.agents(ctx)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, a := range agents {
		c := a.Client
		for {
			st, err := c.Status(ctx)
			if err == nil && st.PolicyRevision >= rev {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("agent %s did not reach revision %d in 30s (status %+v, %v)", a.Name, rev, st, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}
