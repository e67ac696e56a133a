//go:build e2e

package faults_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/e2e/framework"
	"github.com/kestrelnet/kestrel/scenarios/engine"
	simcluster "github.com/kestrelnet/kestrel/sim/cluster"
)

// httpConn is a kept-alive HTTP/1.1 connection from a pod.
type httpConn struct {
	c net.Conn
	r *bufio.Reader
}

func (h *httpConn) get() (int, error) {
	h.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprint(h.c, "GET / HTTP/1.1\r\nHost: one.one.one.one\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(h.r, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = bufio.NewReader(resp.Body).WriteTo(GinkgoWriter)
	return resp.StatusCode, err
}

// The toFQDNs cache outlives the agent: after a kill -9 and a restart, the
// address a pod resolved is still allowed without a new lookup, with the
// same identity (fqdn: label and all), and still expires when the answer's
// TTL runs out.
var _ = Describe("kill -9 of the agents with toFQDNs answers cached", Ordered, func() {
	var (
		plan    *engine.Plan
		sess    engine.Session
		open    *httpConn
		entry   api.FQDNCacheEntry
		agentOf = func() *api.Client { return api.NewClient(simcluster.AgentSocket(cluster.Name(), "node-1")) }
	)
	probe := func(ctx SpecContext, name string) []string {
		p, err := framework.StepProbe(plan.Steps[0], name)
		Expect(err).NotTo(HaveOccurred())
		return framework.CheckProbe(ctx, sess, p)
	}
	cached := func(ctx context.Context) []api.FQDNCacheEntry {
		c, err := agentOf().FQDNCache(ctx)
		if err != nil {
			return nil
		}
		return c.Entries
	}

	BeforeAll(func(ctx SpecContext) {
		if cluster.Provider() != "sim" {
			Skip("reads the agents' API through the sim's sockets")
		}
		var err error
		plan, err = framework.Plan("testdata/agent-restart-fqdn.yaml")
		Expect(err).NotTo(HaveOccurred())
		runner, err := cluster.Runner()
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

	It("allows the address once the DNS proxy saw it answered, with an fqdn: identity", func(ctx SpecContext) {
		Expect(probe(ctx, "address-before-lookup")).To(BeEmpty())
		Expect(probe(ctx, "lookup-and-connect")).To(BeEmpty())
		Expect(probe(ctx, "address-without-lookup")).To(BeEmpty())

		entries := cached(ctx)
		Expect(entries).To(ContainElement(HaveField("IP", "1.1.1.1")))
		for _, e := range entries {
			if e.IP == "1.1.1.1" {
				entry = e
			}
		}
		Expect(entry.Identity).NotTo(BeZero(), "1.1.1.1 has no toFQDNs identity")
		ids, err := agentOf().Identities(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(ids).To(ContainElement(SatisfyAll(HaveField("ID", entry.Identity), HaveField("Labels", ContainElement("fqdn:one.one.one.one")))))

		kube, err := cluster.Client()
		Expect(err).NotTo(HaveOccurred())
		client, err := kube.CoreV1().Pods("faults-fqdn").Get(ctx, "client", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(cluster.InPod(client, func() error {
			c, err := net.DialTimeout("tcp", "1.1.1.1:80", 2*time.Second)
			if err != nil {
				return err
			}
			open = &httpConn{c: c, r: bufio.NewReader(c)}
			return nil
		})).To(Succeed())
		Expect(open.get()).To(Equal(http.StatusOK))
	})

	It("keeps the address allowed, with its identity and expiry, across an agent restart", func(ctx SpecContext) {
		for _, n := range cluster.Nodes() {
			Expect(cluster.KillAgent(n)).To(Succeed())
		}
		Expect(cluster.Up(ctx, len(cluster.Nodes()))).To(Succeed())
		Expect(time.Now().Before(entry.Expires)).To(BeTrue(),
			"the restart took until after the answer's expiry (%v): nothing left to check", entry.Expires)
		after := cached(ctx)
		Expect(after).To(ContainElement(SatisfyAll(HaveField("IP", "1.1.1.1"), HaveField("Identity", entry.Identity),
			HaveField("Expires", BeTemporally("==", entry.Expires)))), "the restarted agent lost or changed the cached answer: %+v", after)
		Expect(open.get()).To(Equal(http.StatusOK), "the established connection broke across the restart")
		Expect(probe(ctx, "address-without-lookup")).To(BeEmpty(), "a new connection to the resolved address was denied after the restart")
		ids, err := agentOf().Identities(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(ids).To(ContainElement(SatisfyAll(HaveField("ID", entry.Identity), HaveField("Labels", ContainElement("fqdn:one.one.one.one")))))
	}, NodeTimeout(2*time.Minute))

	It("still expires the address when the answer's TTL runs out", func(ctx SpecContext) {
		time.Sleep(time.Until(entry.Expires.Add(2 * time.Second)))
		Eventually(func() bool {
			return !slices.ContainsFunc(cached(ctx), func(e api.FQDNCacheEntry) bool { return e.IP == "1.1.1.1" })
		}).WithTimeout(5*time.Second).Should(BeTrue(), "the restored answer outlived its TTL")
		Expect(probe(ctx, "address-after-expiry")).To(BeEmpty())
	}, NodeTimeout(time.Minute))
})
