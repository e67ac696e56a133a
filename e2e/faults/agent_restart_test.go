//go:build e2e

package faults_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/e2e/framework"
	"github.com/kestrelnet/kestrel/scenarios/engine"
)

// conn is a long-lived TCP connection from a pod: each exchange sends a line
// and reads the echo server's one-line answer.
type conn struct {
	c net.Conn
	r *bufio.Reader
}

func (c *conn) exchange() (string, error) {
	c.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintf(c.c, "still there?\n"); err != nil {
		return "", err
	}
	line, err := c.r.ReadString('\n')
	return strings.TrimSpace(line), err
}

var _ = Describe("kill -9 of the agents", Ordered, func() {
	var (
		plan       *engine.Plan
		runner     engine.Runner
		sess       engine.Session
		open       *conn
		before     map[string]api.Status
		echoAnswer = "faults/echo 8080" // what the echo server answers to every line, before the client address
	)

	probe := func(ctx SpecContext, step int, name string) []string {
		p, err := framework.StepProbe(plan.Steps[step], name)
		Expect(err).NotTo(HaveOccurred())
		return framework.CheckProbe(ctx, sess, p)
	}
	agentsAnswer := func(ctx SpecContext) map[string]api.Status {
		out := map[string]api.Status{}
		for _, n := range cluster.Nodes() {
			st, err := cluster.AgentStatus(ctx, n)
			if err != nil {
				return nil
			}
			out[n] = st
		}
		return out
	}

	BeforeAll(func(ctx SpecContext) {
		var err error
		plan, err = framework.Plan("testdata/agent-restart.yaml")
		Expect(err).NotTo(HaveOccurred())
		runner, err = cluster.Runner()
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { framework.CloseRunner(runner) })
		sess, err = runner.Begin(ctx, plan.Scenario)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(sess.Close)
		Expect(sess.Sync(ctx, plan.Steps[0].Cluster)).To(Succeed())
	}, NodeTimeout(2*time.Minute))

	AfterAll(func() {
		if open != nil {
			open.c.Close()
		}
	})

	It("starts from enforced policy and an open connection", func(ctx SpecContext) {
		Expect(probe(ctx, 0, "client-reaches-echo")).To(BeEmpty())
		Expect(probe(ctx, 0, "intruder-is-dropped")).To(BeEmpty())

		kube, err := cluster.Client()
		Expect(err).NotTo(HaveOccurred())
		client, err := kube.CoreV1().Pods("faults").Get(ctx, "client", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		echo, err := kube.CoreV1().Pods("faults").Get(ctx, "echo", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(dialFrom(client, echo, 8080, &open)).To(Succeed())
		Expect(open.exchange()).To(HavePrefix(echoAnswer + " "))

		before = agentsAnswer(ctx)
		Expect(before).To(HaveLen(len(cluster.Nodes())))
	})

	It("keeps the connection and the policy while the agents are dead", func(ctx SpecContext) {
		for _, n := range cluster.Nodes() {
			Expect(cluster.KillAgent(n)).To(Succeed())
		}
		Eventually(func() map[string]api.Status { return agentsAnswer(ctx) }).
			WithTimeout(5*time.Second).Should(BeNil(), "the agents still answer")

		Expect(open.exchange()).To(HavePrefix(echoAnswer+" "), "the established connection broke")
		Expect(probe(ctx, 0, "client-reaches-echo")).To(BeEmpty(), "a new allowed connection failed")
		Expect(probe(ctx, 0, "intruder-is-dropped")).To(BeEmpty(), "policy stopped being enforced")
		Expect(open.exchange()).To(HavePrefix(echoAnswer + " "))
	})

	It("is undone by restarted agents that adopt the datapath without flushing it", func(ctx SpecContext) {
		Expect(cluster.Up(ctx, len(cluster.Nodes()))).To(Succeed())
		after := agentsAnswer(ctx)
		Expect(after).To(HaveLen(len(before)))
		for n, st := range before {
			Expect(endpointsOf(after[n])).To(Equal(endpointsOf(st)), "node %s: endpoints changed across the restart", n)
		}
		// A restarted agent writes every policy afresh, which gives each
		// endpoint a new policy revision: the connection's next packet is
		// judged again and reported. Had the restart flushed conntrack, that
		// packet would be a new flow; it must be the established one.
		since := flowMarks(ctx)
		Expect(open.exchange()).To(HavePrefix(echoAnswer+" "), "the established connection broke across the restart")
		Eventually(func() []api.Flow { return connectionFlows(ctx, open, since, "") }).WithTimeout(5*time.Second).Should(
			ContainElement(SatisfyAll(
				HaveField("Direction", "ingress"), HaveField("Verdict", "forwarded"), HaveField("CT", "established"))),
			"the open connection's packet at echo was not seen as established: the restarted agent lost its conntrack state")
		Expect(connectionFlows(ctx, open, since, "")).NotTo(ContainElement(HaveField("CT", "new")),
			"a packet of the open connection was a new flow after the restart")
		Expect(probe(ctx, 0, "intruder-is-dropped")).To(BeEmpty())
	}, NodeTimeout(2*time.Minute))

	It("drops the open connection's next packet once a deny is in force", func(ctx SpecContext) {
		// Sync returns once every agent reports a policy revision past the
		// change: from then on, the first packet of the open connection meets
		// echo's new (deny-all) ingress policy.
		Expect(sess.Sync(ctx, plan.Steps[1].Cluster)).To(Succeed())
		since := flowMarks(ctx)
		_, err := open.exchange()
		Expect(err).To(HaveOccurred(), "the open connection still answers under a deny-all policy")
		Eventually(func() []api.Flow { return connectionFlows(ctx, open, since, "dropped") }).WithTimeout(5*time.Second).Should(
			ContainElement(SatisfyAll(HaveField("Direction", "ingress"), HaveField("Reason", "POLICY_DENIED"),
				HaveField("CT", "established"))),
			"echo's agent reported no POLICY_DENIED drop of the open connection")
		Expect(probe(ctx, 1, "new-connections-are-dropped")).To(BeEmpty())
	}, NodeTimeout(time.Minute))
})

// flowMarks is each node's flow sequence number now.
func flowMarks(ctx context.Context) map[string]uint64 {
	out := map[string]uint64{}
	for _, n := range cluster.Nodes() {
		f, err := cluster.AgentFlows(ctx, n, 0)
		Expect(err).NotTo(HaveOccurred())
		out[n] = f.Next
	}
	return out
}

// connectionFlows are the flows of the open connection (c's client port and
// echo's 8080) every agent reported since the marks, with this verdict if
// not empty.
func connectionFlows(ctx context.Context, c *conn, since map[string]uint64, verdict string) []api.Flow {
	var out []api.Flow
	local := c.c.LocalAddr().(*net.TCPAddr)
	for _, n := range cluster.Nodes() {
		f, err := cluster.AgentFlows(ctx, n, since[n])
		if err != nil {
			continue
		}
		for _, fl := range f.Flows {
			if fl.Protocol == 6 && fl.SrcPort == uint16(local.Port) && fl.DstPort == 8080 &&
				(verdict == "" || fl.Verdict == verdict) {
				out = append(out, fl)
			}
		}
	}
	return out
}

// dialFrom opens a TCP connection from inside pod from to pod to's port.
func dialFrom(from, to *corev1.Pod, port int, out **conn) error {
	return cluster.InPod(from, func() error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(to.Status.PodIP, fmt.Sprint(port)), 2*time.Second)
		if err != nil {
			return err
		}
		*out = &conn{c: c, r: bufio.NewReader(c)}
		return nil
	})
}

// endpointsOf is what a restart must not change: each endpoint's id,
// identity, addresses and enforcement.
func endpointsOf(st api.Status) map[string]api.EndpointStatus {
	out := map[string]api.EndpointStatus{}
	for _, e := range st.Endpoints {
		out[e.Pod] = e
	}
	return out
}
