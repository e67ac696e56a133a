//go:build e2e

package hubble_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kestrelnet/kestrel/agent/observe/promtooltest"
	"github.com/kestrelnet/kestrel/e2e/framework"
	"github.com/kestrelnet/kestrel/sim/cluster"
	"github.com/kestrelnet/kestrel/sim/controlplane"
	"github.com/kestrelnet/kestrel/sim/network"
)

// scenario denies all ingress in namespace x: every probe to x/a is dropped
// as POLICY_DENIED at x/a's ingress.
const scenario = "scenarios/library/netpol-e2e/01-support-a-default-deny-ingress-policy.yaml"

// hubbleFlow is the part of `hubble observe -o json` the specs read.
type hubbleFlow struct {
	Flow struct {
		Verdict          string `json:"verdict"`
		DropReasonDesc   string `json:"drop_reason_desc"`
		TrafficDirection string `json:"traffic_direction"`
		NodeName         string `json:"node_name"`
		Source           struct {
			Namespace string   `json:"namespace"`
			PodName   string   `json:"pod_name"`
			Labels    []string `json:"labels"`
		} `json:"source"`
		Destination struct {
			Namespace string   `json:"namespace"`
			PodName   string   `json:"pod_name"`
			Identity  uint32   `json:"identity"`
			Labels    []string `json:"labels"`
		} `json:"destination"`
		IngressDeniedBy []struct {
			Kind, Namespace, Name string
		} `json:"ingress_denied_by"`
		L4 struct {
			TCP *struct {
				DestinationPort uint32          `json:"destination_port"`
				Flags           map[string]bool `json:"flags"`
			} `json:"TCP"`
		} `json:"l4"`
	} `json:"flow"`
}

func parseFlows(out string) []hubbleFlow {
	var flows []hubbleFlow
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var f hubbleFlow
		Expect(json.Unmarshal([]byte(line), &f)).To(Succeed(), line)
		flows = append(flows, f)
	}
	return flows
}

// hubbleBinary builds bin/hubble with `make hubble` (cached: a no-op once
// built). Only a build that could not reach the Go module proxy skips.
func hubbleBinary(ctx context.Context) string {
	root, err := framework.RepoRoot()
	Expect(err).NotTo(HaveOccurred())
	out, err := exec.CommandContext(ctx, "make", "-C", root, "--no-print-directory", "hubble").CombinedOutput()
	if err != nil {
		if regexp.MustCompile(`dial tcp|no such host|proxyconnect|i/o timeout|connection refused|network is unreachable`).Match(out) {
			Skip("the hubble CLI cannot be built offline (its module comes from the Go module proxy): " + string(out))
		}
		Fail("make hubble: " + string(out))
	}
	return filepath.Join(root, "bin", "hubble")
}

var _ = Describe("the hubble CLI against the relay", Ordered, func() {
	var (
		c        framework.Cluster
		hubble   string
		followed chan hubbleFlow
	)
	run := func(ctx context.Context, args ...string) string {
		GinkgoHelper()
		out, err := exec.CommandContext(ctx, hubble, args...).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "hubble %v: %s", args, out)
		return string(out)
	}

	BeforeAll(func(ctx SpecContext) {
		hubble = hubbleBinary(ctx)
		c = framework.SetUpCluster(ctx, 2)
		Eventually(ctx, func() error {
			return exec.CommandContext(ctx, hubble, "status", "--server", cluster.RelayAddress).Run()
		}).WithTimeout(30 * time.Second).Should(Succeed())

		// A follower started before the traffic must see its drops arrive.
		followCtx, stop := context.WithCancel(context.Background())
		DeferCleanup(stop)
		follow := exec.CommandContext(followCtx, hubble, "observe", "--server", cluster.RelayAddress, "--follow",
			"--verdict", "DROPPED", "--to-namespace", "x", "-o", "json")
		stdout, err := follow.StdoutPipe()
		Expect(err).NotTo(HaveOccurred())
		follow.Stderr = GinkgoWriter
		Expect(follow.Start()).To(Succeed())
		DeferCleanup(func() { stop(); follow.Wait() })
		followed = make(chan hubbleFlow, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var f hubbleFlow
				if json.Unmarshal(sc.Bytes(), &f) == nil {
					followed <- f
				}
			}
		}()
		time.Sleep(time.Second) // the follower's stream is open before the first drop

		runner, err := c.Runner()
		Expect(err).NotTo(HaveOccurred())
		rep, err := framework.RunScenario(ctx, runner, framework.RepoPath(scenario))
		Expect(err).NotTo(HaveOccurred())
		Expect(rep.OK()).To(BeTrue(), framework.ReportText(rep))
		framework.CloseRunner(runner)
	}, NodeTimeout(framework.UpTimeout+3*time.Minute))

	It("observe --pod x/a --verdict DROPPED -o json shows the denied connections to x/a with Cilium's reason", func(ctx SpecContext) {
		flows := parseFlows(run(ctx, "observe", "--server", cluster.RelayAddress, "--pod", "x/a", "--verdict", "DROPPED",
			"--last", "1000", "-o", "json"))
		Expect(flows).NotTo(BeEmpty())
		toA := 0
		for _, f := range flows {
			Expect(f.Flow.Verdict).To(Equal("DROPPED"))
			isA := func(ns, pod string) bool { return ns == "x" && pod == "a" }
			Expect(isA(f.Flow.Source.Namespace, f.Flow.Source.PodName) || isA(f.Flow.Destination.Namespace, f.Flow.Destination.PodName)).
				To(BeTrue(), "flow %+v is neither from nor to x/a", f.Flow)
			if isA(f.Flow.Destination.Namespace, f.Flow.Destination.PodName) {
				toA++
				Expect(f.Flow.DropReasonDesc).To(Equal("POLICY_DENIED"))
				Expect(f.Flow.TrafficDirection).To(Equal("INGRESS"))
				// The default deny is named: the policy that isolates x/a.
				Expect(f.Flow.IngressDeniedBy).To(ConsistOf(HaveField("Name", "deny-ingress")))
				Expect(f.Flow.IngressDeniedBy[0].Kind).To(Equal("NetworkPolicy"))
				Expect(f.Flow.IngressDeniedBy[0].Namespace).To(Equal("x"))
				Expect(f.Flow.Destination.Labels).To(ContainElements("k8s:pod=a", "k8s:io.kubernetes.pod.namespace=x"))
				Expect(f.Flow.Destination.Identity).To(BeNumerically(">=", 256))
				Expect(f.Flow.L4.TCP).NotTo(BeNil())
				Expect(f.Flow.L4.TCP.DestinationPort).To(Equal(uint32(80)))
				Expect(f.Flow.L4.TCP.Flags).To(HaveKeyWithValue("SYN", true))
				Expect(c.Nodes()).To(ContainElement(f.Flow.NodeName))
			}
		}
		// The scenario probes x/a from each of its nine pods but itself.
		Expect(toA).To(BeNumerically(">=", 8))
	})

	It("kestrel observe gives the same flows as hubble observe, in each output", func(ctx SpecContext) {
		args := []string{"--server", cluster.RelayAddress, "--pod", "x/a", "--verdict", "DROPPED", "--last", "1000", "-o", "json"}
		fromHubble := parseFlows(run(ctx, append([]string{"observe"}, args...)...))
		root, err := framework.RepoRoot()
		Expect(err).NotTo(HaveOccurred())
		kestrel := filepath.Join(root, "bin", "kestrel")
		out, err := exec.CommandContext(ctx, kestrel, append([]string{"observe"}, args...)...).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(parseFlows(string(out))).To(Equal(fromHubble))
		policyNames := run(ctx, "observe", "--server", cluster.RelayAddress, "--to-pod", "x/a", "--verdict", "DROPPED", "--print-policy-names")
		Expect(policyNames).To(ContainSubstring("deny-ingress (NetworkPolicy)"))
		for _, format := range []string{"table", "compact"} {
			out, err := exec.CommandContext(ctx, kestrel, "observe", "--server", cluster.RelayAddress, "--to-pod", "x/a",
				"--verdict", "DROPPED", "-o", format).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), string(out))
			Expect(string(out)).To(MatchRegexp(`x/a:80 \(ID:\d+\)\s+ingress-drop\s+DROPPED POLICY_DENIED\s+\(?TCP Flags: SYN\)?\s+(by )?NetworkPolicy/x/deny-ingress`), format)
		}
	})

	It("observe --follow saw the drops as they happened", func(ctx SpecContext) {
		var f hubbleFlow
		Eventually(ctx, followed).WithTimeout(5 * time.Second).Should(Receive(&f))
		Expect(f.Flow.Verdict).To(Equal("DROPPED"))
		Expect(f.Flow.Destination.Namespace).To(Equal("x"))
		Expect(f.Flow.DropReasonDesc).To(Equal("POLICY_DENIED"))
	})

	It("status reports the relay healthy with every node connected", func(ctx SpecContext) {
		out := run(ctx, "status", "--server", cluster.RelayAddress)
		Expect(out).To(ContainSubstring("Healthcheck (via " + cluster.RelayAddress + "): Ok"))
		Expect(out).To(MatchRegexp(`Current/Max Flows: [0-9,]+/32,768`))
		Expect(out).To(ContainSubstring("Connected Nodes: 2/2"))
	})

	It("the agents' and the relay's metrics pass promtool, with the drops under Cilium's reasons", func(ctx SpecContext) {
		var drops bool
		for i := range c.Nodes() {
			url := fmt.Sprintf("http://%s/metrics", net.JoinHostPort(network.NodeIP(i+1).String(), strconv.Itoa(cluster.AgentMetricsPort)))
			body := promtooltest.Scrape(GinkgoT(), url)
			promtooltest.Check(GinkgoT(), body)
			text := string(body)
			Expect(text).To(ContainSubstring("cilium_endpoint "), url)
			if strings.Contains(text, `hubble_drop_total{protocol="TCP",reason="POLICY_DENIED"}`) {
				drops = true
				Expect(text).To(ContainSubstring(`cilium_drop_count_total{direction="INGRESS",reason="Policy denied"}`))
				Expect(text).To(MatchRegexp(`hubble_flows_processed_total\{protocol="TCP",subtype="",type="Drop",verdict="DROPPED"\} \d+`))
				Expect(text).To(MatchRegexp(`hubble_policy_verdicts_total\{action="dropped",direction="ingress",match="none"\} \d+`))
			}
		}
		Expect(drops).To(BeTrue(), "no agent counted the scenario's denied SYNs in hubble_drop_total")
		body := promtooltest.Scrape(GinkgoT(), "http://"+cluster.RelayMetricsAddress+"/metrics")
		promtooltest.Check(GinkgoT(), body)
		Expect(string(body)).To(ContainSubstring(fmt.Sprintf(`hubble_relay_pool_peer_connection_status{status="READY"} %d`, len(c.Nodes()))))
		Expect(string(body)).To(MatchRegexp(`grpc_server_handled_total\{grpc_code="OK",grpc_method="GetFlows",grpc_service="observer.Observer",grpc_type="server_stream"\} [1-9]`))
	})

	It("the service map shows the scenario's pods and the denied connections as dropped edges, in headless Chromium", func(ctx SpecContext) {
		root, err := framework.RepoRoot()
		Expect(err).NotTo(HaveOccurred())
		ui := filepath.Join(root, "agent", "observe", "servicemap", "ui")
		_, err = os.Stat(filepath.Join(ui, "node_modules", "playwright-core"))
		Expect(err).NotTo(HaveOccurred(), "playwright-core is not installed: run make deps (npm ci in %s)", ui)
		Expect(os.MkdirAll(filepath.Join(root, "bin"), 0o755)).To(Succeed())
		shot := filepath.Join(root, "bin", "servicemap.png")
		pods := []string{}
		for _, ns := range []string{"x", "y", "z"} {
			for _, p := range []string{"a", "b", "c"} {
				pods = append(pods, ns+"/"+p)
			}
		}
		podsJSON, _ := json.Marshal(pods)
		cmd := exec.CommandContext(ctx, "node", filepath.Join(ui, "test", "servicemap.mjs"), "http://"+cluster.ServiceMapAddress+"/", shot, string(podsJSON), "y")
		cmd.Stderr = GinkgoWriter
		out, err := cmd.Output()
		Expect(err).NotTo(HaveOccurred(), "the page did not show the pods and a dropped edge: %s", out)
		type edge struct {
			Source, Target, Verdict, Reason, Port, Policies string
		}
		var seen struct {
			All, Filtered struct {
				Nodes []struct{ Namespace, Pod string }
				Edges []edge
			}
			Errors []string
		}
		Expect(json.Unmarshal(out, &seen)).To(Succeed(), string(out))
		Expect(seen.Errors).To(BeEmpty())
		var denied []edge
		for _, e := range seen.All.Edges {
			if e.Verdict == "DROPPED" && e.Target == "x/Pod/a" {
				denied = append(denied, e)
			}
		}
		// Every other pod's SYN to x/a is a dropped edge, naming the policy.
		Expect(len(denied)).To(BeNumerically(">=", 8), "dropped edges into x/a: %+v", seen.All.Edges)
		for _, e := range denied {
			Expect(e.Reason).To(Equal("POLICY_DENIED"))
			Expect(e.Port).To(Equal("TCP/80"))
			Expect(e.Policies).To(Equal("NetworkPolicy/x/deny-ingress"))
		}
		Expect(seen.Filtered.Edges).NotTo(BeEmpty())
		for _, e := range seen.Filtered.Edges {
			Expect(strings.HasPrefix(e.Source, "y/") || strings.HasPrefix(e.Target, "y/")).To(BeTrue(), "edge %+v has no end in y", e)
		}
		info, err := os.Stat(shot)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.Size()).To(BeNumerically(">", 10_000))
		GinkgoWriter.Printf("service map screenshot: %s\n", shot)
	})

	It("lists the namespaces with flows, gives each flow a UUID that selects it, and an agent's events", func(ctx SpecContext) {
		out := run(ctx, "list", "namespaces", "--server", cluster.RelayAddress)
		for _, ns := range []string{"x", "y", "z"} {
			Expect(out).To(MatchRegexp(`(?m)^%s(\s|$)`, ns))
		}
		type withUUID struct {
			Flow struct {
				UUID string `json:"uuid"`
			} `json:"flow"`
		}
		var f withUUID
		Expect(json.Unmarshal([]byte(strings.SplitN(run(ctx, "observe", "--server", cluster.RelayAddress, "--last", "1", "-o", "json"), "\n", 2)[0]), &f)).To(Succeed())
		Expect(f.Flow.UUID).To(MatchRegexp(`^[0-9a-f-]{36}$`))
		again := parseFlows(run(ctx, "observe", "--server", cluster.RelayAddress, "--uuid", f.Flow.UUID, "-o", "json"))
		Expect(again).To(HaveLen(1))
		sock := filepath.Join(controlplane.DefaultStateDir(c.Name()), "nodes", c.Nodes()[0], "hubble.sock")
		events := run(ctx, "observe", "agent-events", "--server", "unix://"+sock, "--last", "100", "-o", "json")
		Expect(events).To(ContainSubstring(`"AGENT_STARTED"`))
		Expect(events).To(ContainSubstring(`"ENDPOINT_CREATED"`))
		Expect(events).To(ContainSubstring(`"POLICY_UPDATED"`))
	})

	It("list nodes names every node as Connected", func(ctx SpecContext) {
		out := run(ctx, "list", "nodes", "--server", cluster.RelayAddress)
		for _, n := range c.Nodes() {
			Expect(out).To(MatchRegexp(`(?m)^%s\s+Connected\s`, regexp.QuoteMeta(n)))
		}
	})
})
