package simbench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kestrelnet/kestrel/bench/metrics"
	"github.com/kestrelnet/kestrel/sim/cgroups"
	"github.com/kestrelnet/kestrel/sim/network"
)

// steadyService is a service of its own for the steady-state runs: port
// steadyPort to the bench's server in the first echo pod.
const (
	steadyService = "bench-steady"
	steadyPort    = 9100
)

// steadyTarget is where a steady-state client connects from: a client
// (its pod's netns, in its cgroup or not), or a namespace of the bench's
// own (the bare veth).
type steadyTarget struct {
	Name     string
	netns    string // path
	cgroup   string // "" to stay in the bench's cgroup
	dst      netip.AddrPort
	socketLB *client // check that its agent translated the connect
}

// steadyState measures, for every client through the steady service, a
// direct pod-to-pod connection (Kestrel's node, no service) and a bare veth
// pair with nothing attached: 1-byte ping-pongs per second and one
// stream's throughput, each over one connection for SteadySeconds, the
// targets interleaved in each of Runs rounds. Ratios over the bare veth
// are per round.
func (r *runner) steadyState(ctx context.Context) error {
	// The server runs in this process, in the first echo pod's namespace:
	// its socket belongs there whatever thread later serves it.
	echo0, err := r.podUID(ctx, "echo-0")
	if err != nil {
		return err
	}
	var l net.Listener
	if err := inNetns(network.NetnsPath(network.PodNetns(ClusterName, echo0)), func() (err error) {
		l, err = net.Listen("tcp", ":"+strconv.Itoa(steadyPort))
		return err
	}); err != nil {
		return fmt.Errorf("steady-state server: %w", err)
	}
	defer l.Close()
	go serveSteady(l)

	bare, cleanup, err := bareVeth()
	if err != nil {
		return err
	}
	defer cleanup()
	bl, err := bare.listen()
	if err != nil {
		return err
	}
	defer bl.Close()
	go serveSteady(bl)

	vip, err := r.createSteadyService(ctx)
	if err != nil {
		return err
	}
	targets := []steadyTarget{{Name: "bare-veth", netns: network.NetnsPath(bareClientNetns), dst: netip.AddrPortFrom(bareServerIP, steadyPort)}}
	targets = append(targets, steadyTarget{Name: "direct", netns: r.clients[datapaths[0].Node], dst: netip.AddrPortFrom(r.backends[0], steadyPort)})
	for i := range clients {
		c := &clients[i]
		t := steadyTarget{Name: c.Name, netns: r.clients[c.dp.Node], dst: netip.AddrPortFrom(vip, steadyPort)}
		if c.inCgroup {
			if t.cgroup, err = cgroups.FindPod(ClusterName, r.clientUIDs[c.dp.Node]); err != nil {
				return err
			}
		}
		if c.socketLB {
			t.socketLB = c
		}
		targets = append(targets, t)
	}
	// Every datapath answers through the service before anything is timed.
	r.progress(fmt.Sprintf("steady state: waiting for every datapath to answer through %s (%s:%d)", steadyService, vip, steadyPort))
	for _, c := range clients {
		if err := r.waitAnswers(ctx, c, netip.AddrPortFrom(vip, steadyPort)); err != nil {
			return err
		}
	}
	d := r.p.SteadySeconds
	rates := map[string]map[string][]float64{}
	for run := range r.p.Runs {
		r.progress(fmt.Sprintf("steady state: round %d/%d, %d targets, %s each for ping-pong and stream", run+1, r.p.Runs, len(targets), d))
		for _, t := range targets {
			for _, mode := range []string{ModePingPong, ModeStream} {
				before := 0
				if t.socketLB != nil {
					if before, err = r.socketTranslations(ctx, *t.socketLB); err != nil {
						return err
					}
				}
				res, err := r.steadyRun(t, mode, d)
				if err != nil {
					return fmt.Errorf("steady state, %s, %s: %w", t.Name, mode, err)
				}
				if t.socketLB != nil {
					after, err := r.socketTranslations(ctx, *t.socketLB)
					if err != nil {
						return err
					}
					if err := checkSocketLB(*t.socketLB, t.dst.String(), after-before, 1); err != nil {
						return err
					}
				}
				if rates[t.Name] == nil {
					rates[t.Name] = map[string][]float64{}
				}
				rates[t.Name][mode] = append(rates[t.Name][mode], res.Rate)
			}
		}
	}
	for _, t := range targets {
		pp, st := rates[t.Name][ModePingPong], rates[t.Name][ModeStream]
		gbit := make([]float64, len(st))
		for i := range st {
			gbit[i] = st[i] / 1e9
		}
		r.out = append(r.out,
			metrics.Summarize("steady/"+t.Name+"/pingpong-per-s", "1/s", metrics.Higher, pp),
			metrics.Summarize("steady/"+t.Name+"/stream-gbit-per-s", "Gbit/s", metrics.Higher, gbit))
		if t.Name == "bare-veth" {
			continue
		}
		ppr, str := make([]float64, len(pp)), make([]float64, len(st))
		for i := range pp {
			ppr[i] = pp[i] / rates["bare-veth"][ModePingPong][i]
			str[i] = st[i] / rates["bare-veth"][ModeStream][i]
		}
		r.out = append(r.out,
			metrics.Summarize("steady/"+t.Name+"/pingpong-over-bare-veth", metrics.UnitRatio, metrics.Higher, ppr),
			metrics.Summarize("steady/"+t.Name+"/stream-over-bare-veth", metrics.UnitRatio, metrics.Higher, str))
	}
	return nil
}

// steadyRun runs `kestrel bench steady-client` in t's namespace (and
// cgroup): a process of its own, as the pod's would be.
func (r *runner) steadyRun(t steadyTarget, mode string, d time.Duration) (SteadyResult, error) {
	cmd := exec.Command(r.clientBin(), "bench", "steady-client", "--netns", t.netns,
		"--target", t.dst.String(), "--mode", mode, "--duration", d.String())
	if t.cgroup != "" {
		release, err := cgroups.Place(cmd, t.cgroup)
		if err != nil {
			return SteadyResult{}, err
		}
		defer release()
	}
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return SteadyResult{}, fmt.Errorf("%v: %s", err, ee.Stderr)
		}
		return SteadyResult{}, err
	}
	var res SteadyResult
	if err := json.Unmarshal(out, &res); err != nil {
		return SteadyResult{}, fmt.Errorf("steady-client said %q: %w", out, err)
	}
	return res, nil
}

// waitAnswers waits until a connect from c to dst succeeds.
func (r *runner) waitAnswers(ctx context.Context, c client, dst netip.AddrPort) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		times, _, err := r.connects(c, dst, 2)
		if len(times) == 2 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no answer from %s after 2m: %v", c.Name, dst, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (r *runner) podUID(ctx context.Context, name string) (string, error) {
	p, err := r.kube.CoreV1().Pods(Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	return string(p.UID), nil
}

// createSteadyService makes the steady service, its one endpoint the first
// echo pod's steadyPort, and returns its VIP.
func (r *runner) createSteadyService(ctx context.Context) (netip.Addr, error) {
	svc, err := r.kube.CoreV1().Services(Namespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: steadyService},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{Port: steadyPort, TargetPort: intstr.FromInt32(steadyPort), Protocol: corev1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("create service %s: %w", steadyService, err)
	}
	vip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil {
		return netip.Addr{}, err
	}
	port, proto, portName, ready := int32(steadyPort), corev1.ProtocolTCP, "", true
	node := network.NodeName(backendNode)
	_, err = r.kube.DiscoveryV1().EndpointSlices(Namespace).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: steadyService + "-bench", Labels: map[string]string{
			discoveryv1.LabelServiceName: steadyService, discoveryv1.LabelManagedBy: managedBy}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port, Protocol: &proto}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{r.backends[0].String()},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready}, NodeName: &node}},
	}, metav1.CreateOptions{})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("create EndpointSlice of %s: %w", steadyService, err)
	}
	return vip, nil
}
