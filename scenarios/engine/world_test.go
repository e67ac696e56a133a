package engine

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/kestrelnet/kestrel/scenarios/format"
)

const externalService = `apiVersion: kestrel.dev/v1alpha1
kind: Scenario
metadata: {name: ext}
spec:
  nodes: [node-1, node-2]
  pods:
    - {name: x/a, labels: {app: web}, ports: [80/TCP], node: node-2}
  world:
    - {ip: 203.0.113.11, ports: [80/TCP, 443/TCP]}
  objects:
    - apiVersion: v1
      kind: Service
      metadata: {name: web, namespace: x}
      spec:
        type: LoadBalancer
        externalTrafficPolicy: Local
        selector: {app: web}
        externalIPs: [198.51.100.20]
        ports: [{port: 80, nodePort: 30080}]
      status:
        loadBalancer: {ingress: [{ip: 198.51.100.10}]}
  probes:
    - name: nodeport
      from: {ip: 203.0.113.2, via: node-2}
      to: {node: node-2}
      port: 30080
      expect: {verdict: allowed, backend: x/a, sourceIP: 203.0.113.2}
    - name: lb
      from: {ip: 203.0.113.2, via: node-1}
      to: {ip: 198.51.100.10}
      port: 80
      expect: {verdict: allowed, backend: [x/a], sourceIP: {node: node-1}}
    - name: external-ip
      from: {ip: 203.0.113.2, via: node-1}
      to: {ip: 198.51.100.20}
      port: 80
      expect: {verdict: allowed, backend: x/a}
    - name: world
      from: x/a
      to: {ip: 203.0.113.11}
      port: 443
      expect: {verdict: allowed}
`

func TestWorldSourcesFrontendsAndSourceIPsAreResolved(t *testing.T) {
	plan := expand(t, externalService)
	c := plan.Steps[0].Cluster
	if len(c.World) != 1 || c.World[0].IP != netip.MustParseAddr("203.0.113.11") || !c.Serves(c.World[0].IP, 443, "TCP") || c.Serves(c.World[0].IP, 443, "UDP") {
		t.Errorf("world = %+v", c.World)
	}
	ps := map[string]Probe{}
	for _, p := range plan.Steps[0].Probes {
		ps[p.Probe.Name] = p.Probe
	}
	np := ps["nodeport"]
	if np.From.Via != "node-2" || np.From.IP.String() != "203.0.113.2" || np.To.Node != "node-2" || np.To.Frontend != "x/web" || np.To.Service != "" {
		t.Errorf("nodeport probe: from %+v to %+v", np.From, np.To)
	}
	if s := np.Expect.SourceIP; s == nil || s.IP.String() != "203.0.113.2" {
		t.Errorf("nodeport sourceIP = %+v", s)
	}
	lb := ps["lb"]
	if lb.To.Frontend != "x/web" || lb.Expect.SourceIP == nil || lb.Expect.SourceIP.Node != "node-1" || lb.Expect.SourceIP.IP.String() != "172.18.0.2" {
		t.Errorf("lb probe: to %+v, sourceIP %+v", lb.To, lb.Expect.SourceIP)
	}
	if ps["external-ip"].To.Frontend != "x/web" {
		t.Errorf("external IP probe: to %+v", ps["external-ip"].To)
	}
	if ps["world"].To.Frontend != "" {
		t.Errorf("a world server is no frontend: %+v", ps["world"].To)
	}
}

func TestABackendExpectedOfAnAddressNoServiceHasIsAnError(t *testing.T) {
	text := strings.Replace(externalService, "to: {ip: 198.51.100.20}", "to: {ip: 198.51.100.21}", 1)
	s, err := format.Parse("s.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Expand(s)
	if err == nil || !strings.Contains(err.Error(), "s.yaml:33") || !strings.Contains(err.Error(), "198.51.100.21 port 80/TCP is no NodePort, LoadBalancer or external IP") {
		t.Errorf("error %v", err)
	}
}

func TestTheSourceIPIsCheckedOnAnsweredProbes(t *testing.T) {
	want := &Peer{IP: netip.MustParseAddr("203.0.113.2")}
	e := Expectation{Verdict: "allowed", SourceIP: want}
	if p := Check(e, Observation{Verdict: "allowed", SourceIP: want.IP}); len(p) != 0 {
		t.Errorf("the same address: %v", p)
	}
	p := Check(e, Observation{Verdict: "allowed", SourceIP: netip.MustParseAddr("172.18.0.3")})
	if len(p) != 1 || p[0] != "source IP: expected 203.0.113.2, observed 172.18.0.3" {
		t.Errorf("another address: %v", p)
	}
	if p := Check(e, Observation{Verdict: "allowed"}); len(p) != 1 || !strings.Contains(p[0], "observed (none)") {
		t.Errorf("no address reported: %v", p)
	}
	e.Verdict = "dropped"
	if p := Check(e, Observation{Verdict: "dropped"}); len(p) != 0 {
		t.Errorf("a dropped probe has no server to report: %v", p)
	}
}
