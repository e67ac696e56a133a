package simbench

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kestrelnet/kestrel/bench/metrics"
	"github.com/kestrelnet/kestrel/sim/network"
	"github.com/kestrelnet/kestrel/sim/workload"
)

// policyName is the NetworkPolicy the policy-scaling runs write.
const policyName = "bench-egress"

// egressPolicy selects node-1's client pod and has rules egress rules: the
// first rules-1 allow TCP 8080 to pods labelled rule=r<i>, which no pod is,
// and the last allows TCP 8080 to the echo pod named allow alone. A
// connect to it is allowed by the last rule; one to any other echo pod is
// denied.
func egressPolicy(rules int, allow string) *networkingv1.NetworkPolicy {
	port := intstr.FromInt32(echoPort)
	tcp := corev1.ProtocolTCP
	rule := func(labels map[string]string) networkingv1.NetworkPolicyEgressRule {
		return networkingv1.NetworkPolicyEgressRule{
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
			To:    []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: labels}}},
		}
	}
	p := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: policyName},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("client-node-%d", datapaths[0].Node)}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
		},
	}
	for i := range rules - 1 {
		p.Spec.Egress = append(p.Spec.Egress, rule(map[string]string{"rule": fmt.Sprintf("r%d", i)}))
	}
	p.Spec.Egress = append(p.Spec.Egress, rule(map[string]string{"app": allow}))
	return p
}

// policyScaling measures Kestrel's connect to an echo pod from node-1's
// client pod (socket LB and per packet) with no policy, then with an
// egress policy of each size in PolicyRules on the client, whose last rule
// allows that pod: the cost of connection setup by the number of rules.
// The allowed pod alternates between two from one size to the next, and
// each size is waited for until the new one answers and the other is
// denied (that policy is in the datapath).
func (r *runner) policyScaling(ctx context.Context) error {
	pols := r.kube.NetworkingV1().NetworkPolicies(Namespace)
	defer pols.Delete(context.Background(), policyName, metav1.DeleteOptions{})
	for j, rules := range append([]int{0}, r.p.PolicyRules...) {
		allowed := netip.AddrPortFrom(r.backends[j%2], echoPort)
		denied := netip.AddrPortFrom(r.backends[1-j%2], echoPort)
		if rules > 0 {
			r.progress(fmt.Sprintf("policy: %d egress rules on %s's client", rules, datapaths[0].Name))
			p := egressPolicy(rules, fmt.Sprintf("echo-%d", j%2))
			if old, err := pols.Get(ctx, policyName, metav1.GetOptions{}); err == nil {
				p.ResourceVersion = old.ResourceVersion
				_, err = pols.Update(ctx, p, metav1.UpdateOptions{})
				if err != nil {
					return err
				}
			} else if _, err := pols.Create(ctx, p, metav1.CreateOptions{}); err != nil {
				return err
			}
			if err := r.waitPolicy(ctx, allowed, denied, rules); err != nil {
				return err
			}
		}
		for _, c := range clients[:2] {
			var p50, p99 []float64
			r.connects(c, allowed, 5)
			for range r.p.Runs {
				times, failed, err := r.connects(c, allowed, r.p.Connects)
				if failed > 0 || len(times) == 0 {
					return fmt.Errorf("policy, %d rules, %s to %s: %d connects failed: %v", rules, c.Name, allowed, failed, err)
				}
				us := make([]float64, len(times))
				for i, t := range times {
					us[i] = float64(t.Nanoseconds()) / 1e3
				}
				sort.Float64s(us)
				p50 = append(p50, metrics.Percentile(us, 50))
				p99 = append(p99, metrics.Percentile(us, 99))
			}
			name := fmt.Sprintf("policy/%s/rules=%d/allowed", c.Name, rules)
			r.out = append(r.out, metrics.Summarize(name+"/connect-p50", "us", metrics.Lower, p50),
				metrics.Summarize(name+"/connect-p99", "us", metrics.Lower, p99))
		}
	}
	return nil
}

// waitPolicy waits until node-1's client reaches allowed and cannot
// connect to denied: the policy of the given size is in force.
func (r *runner) waitPolicy(ctx context.Context, allowed, denied netip.AddrPort, rules int) error {
	c := clients[1]
	netns := network.PodNetns(ClusterName, r.clientUIDs[c.dp.Node])
	try := func(dst netip.AddrPort) (bool, error) {
		res, err := workload.RunInPod(r.clientBin(), "", workload.ConnectRequest{Netns: netns, Protocol: "tcp",
			Target: dst.String(), Count: 2, Timeout: 300 * time.Millisecond})
		return err == nil && res.Err == "" && len(res.ConnectNs) == 2, err
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		ok, err := try(allowed)
		if err != nil {
			return err
		}
		if ok {
			reached, err := try(denied)
			if err != nil {
				return err
			}
			if !reached {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("policy of %d rules: not in force for %s after 5m (%s allowed, %s denied)", rules, c.Name, allowed, denied)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
