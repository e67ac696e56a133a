package format

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const header = "apiVersion: kestrel.dev/v1alpha1\nkind: Scenario\nmetadata: {name: t}\n"

func TestParseRejectsBadInputWithFileAndLine(t *testing.T) {
	tests := []struct {
		name, spec, want string
	}{
		{"an unknown top-level spec field is named", "spec:\n  podz: []\n", `s.yaml:5: spec: unknown field "podz"`},
		{"an unknown pod field is named with its path", "spec:\n  pods:\n    - name: x/a\n      colour: red\n", `s.yaml:7: spec.pods[0]: unknown field "colour"`},
		{"a pod name without a namespace is refused", "spec:\n  pods:\n    - name: a\n", "s.yaml:6: spec.pods[0]: name must be namespace/name"},
		{"a malformed port is refused", "spec:\n  pods:\n    - {name: x/a, ports: [eighty/TCP]}\n", `s.yaml:6: spec.pods[0].ports[0]: expected "PORT/PROTOCOL"`},
		{"an unknown protocol is refused", "spec:\n  pods:\n    - {name: x/a, ports: [80/QUIC]}\n", "protocol must be TCP, UDP or SCTP"},
		{"a probe without a verdict is refused", "spec:\n  probes:\n    - {from: x/a, to: x/b, port: 80}\n", "s.yaml:6: spec.probes[0]: expect.verdict must be one of"},
		{"a peer with two kinds is refused", "spec:\n  probes:\n    - {from: x/a, to: {ip: 1.2.3.4, node: n}, port: 80, expect: {verdict: allowed}}\n", "give exactly one of"},
		{"a reason without dropped is refused", "spec:\n  probes:\n    - {from: x/a, to: x/b, port: 80, expect: {verdict: allowed, reason: POLICY_DENIED}}\n", "expect.reason goes with verdict dropped"},
		{"a backend without a service target is refused", "spec:\n  probes:\n    - {from: x/a, to: x/b, port: 80, expect: {verdict: allowed, backend: x/b}}\n", "s.yaml:6: spec.probes[0]: expect.backend goes with a service target"},
		{"a backend that is no pod name is refused", "spec:\n  probes:\n    - {from: x/a, to: {service: x/web, port: http}, expect: {verdict: allowed, backend: [x/b, web]}}\n", `expect.backend: a pod is written namespace/name, got "web"`},
		{"a backend list of mappings is refused", "spec:\n  probes:\n    - {from: x/a, to: {service: x/web, port: http}, expect: {verdict: allowed, backend: [{pod: x/b}]}}\n", "expect.backend: expected pods (namespace/name), got a mapping in the list"},
		{"an empty backend list is refused", "spec:\n  probes:\n    - {from: x/a, to: {service: x/web, port: http}, expect: {verdict: allowed, backend: []}}\n", "expect.backend: give a pod"},
		{"a packet without exchange packet is refused", "spec:\n  probes:\n    - {from: x/a, to: x/b, port: 80, packet: {flags: [SYN]}, expect: {verdict: allowed}}\n", "packet is given exactly when exchange is packet"},
		{"an unknown TCP flag is refused", "spec:\n  probes:\n    - {from: x/a, to: x/b, port: 80, exchange: packet, packet: {flags: [XMAS]}, expect: {verdict: allowed}}\n", `unknown flag "XMAS"`},
		{"a matrix row with a bad cell names its line", "spec:\n  reachability:\n    port: 80\n    expect: |\n      -   x/a x/b\n      x/a .   ?\n", `s.yaml:9: spec.reachability.expect: row "x/a", column "x/b": "?"`},
		{"a short matrix row is refused", "spec:\n  reachability:\n    port: 80\n    expect: |\n      -   x/a x/b\n      x/a .\n", "has 1 cells, the header has 2"},
		{"a matrix without a port is refused", "spec:\n  reachability:\n    expect: |\n      -   x/a\n      x/a .\n", "port is required"},
		{"a YAML syntax error keeps its line", "spec:\n  pods: [\n", "s.yaml:6: did not find expected node content"},
		{"an object without a name is refused", "spec:\n  objects:\n    - {apiVersion: v1, kind: Service}\n", "s.yaml:6: spec.objects[0]: an object needs apiVersion, kind and metadata.name"},
		{"setLabels must name a pod or a namespace", "spec:\n  steps:\n    - setLabels: [{labels: {a: b}}]\n", "give exactly one of pod or namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(header+tt.spec))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseReadsEveryShape(t *testing.T) {
	s, err := Parse("s.yaml", []byte(header+`spec:
  nodes: [n1, n2]
  pods:
    - name: x/a
      labels: {pod: a}
      ports: [80/TCP, 53/UDP, {name: http, port: 8080}]
      ips: [10.0.0.1, fd00::1]
  objects:
    - apiVersion: cilium.io/v2
      kind: CiliumNetworkPolicy
      metadata: {name: p, namespace: x}
      spec: {endpointSelector: {}}
  steps:
    - apply: [p]
      probes:
        - {from: {ip: 192.0.2.10}, to: x/a, port: http, expect: {verdict: dropped, reason: POLICY_DENIED}}
        - {from: x/a, to: {service: x/web, port: http}, expect: {verdict: allowed, backend: [x/b, x/c]}}
        - {from: x/a, to: {service: x/web, port: 80}, expect: {verdict: allowed, backend: x/b}}
        - {from: x/a, to: {service: x/none, port: 80}, expect: {verdict: rejected, reason: SERVICE_NO_BACKEND}}
        - {from: x/a, to: {service: x/web, port: http}, expect: {verdict: allowed, backend: x/a}}
      reachability:
        - {port: 80, expect: "- x/a\nx/a X"}
        - {port: 53, protocol: UDP, expect: "- x/a\nx/a ."}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := s.Spec.Pods[0]
	if len(p.Ports) != 3 || p.Ports[2] != (ContainerPort{Name: "http", Port: 8080, Protocol: "TCP"}) || p.Ports[1].Protocol != "UDP" {
		t.Errorf("ports %+v", p.Ports)
	}
	o := s.Spec.Objects[0]
	if o.Kind != "CiliumNetworkPolicy" || o.Namespace != "x" || o.Source != "s.yaml:12" || !strings.Contains(string(o.JSON), `"endpointSelector":{}`) {
		t.Errorf("object %+v %s", o, o.JSON)
	}
	st := s.Spec.Steps[0]
	if st.Apply[0].Name != "p" || st.Probes[0].Port.Name != "http" || st.Probes[0].From.IP != "192.0.2.10" || st.Probes[0].Exchange != "connect" {
		t.Errorf("step %+v", st)
	}
	if b := st.Probes[1].Expect.Backend.Pods; len(b) != 2 || b[0] != "x/b" || b[1] != "x/c" {
		t.Errorf("a backend list reads as %v", b)
	}
	if b := st.Probes[2].Expect.Backend.Pods; len(b) != 1 || b[0] != "x/b" || st.Probes[2].To.Port.Number != 80 {
		t.Errorf("one backend reads as %v", b)
	}
	if e := st.Probes[3].Expect; e.Verdict != "rejected" || e.Reason != "SERVICE_NO_BACKEND" {
		t.Errorf("a reject with its reason reads as %+v", e)
	}
	if len(st.Reachability) != 2 || st.Reachability[1].Table["x/a"]["x/a"] != true || st.Reachability[0].Protocol != "TCP" {
		t.Errorf("reachability %+v", st.Reachability)
	}
}

func TestIncludedFilesAddTheirObjects(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("objs.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: x}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: x}\n")
	write("s.yaml", header+"spec:\n  include: [objs.yaml]\n")
	s, err := ParseFile(filepath.Join(dir, "s.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Spec.Objects) != 2 || s.Spec.Objects[1].Name != "b" || !strings.HasSuffix(s.Spec.Objects[1].Source, "objs.yaml:5") {
		t.Errorf("objects %+v", s.Spec.Objects)
	}
	if IsScenario([]byte("apiVersion: v1\nkind: Service\n")) || !IsScenario([]byte(header)) || !IsScenario([]byte("kind: Scenario\nspec: [\n")) {
		t.Error("IsScenario misjudges")
	}
}

func TestParseReportsEveryErrorAndSkipsEmptyDocuments(t *testing.T) {
	_, err := Parse("s.yaml", []byte("---\n---\n"+header+"spec:\n  podz: []\n  pods:\n    - {name: a, colour: red}\n"))
	var list Errors
	if !errors.As(err, &list) {
		t.Fatalf("error %v is not Errors", err)
	}
	want := "s.yaml:7: spec: unknown field \"podz\"\ns.yaml:9: spec.pods[0]: unknown field \"colour\"\ns.yaml:9: spec.pods[0]: name must be namespace/name, got \"a\""
	if err.Error() != want {
		t.Errorf("errors:\n%v\nwant:\n%s", err, want)
	}
}

func TestParseReadsTheWorldAroundTheCluster(t *testing.T) {
	s, err := Parse("s.yaml", []byte(header+`spec:
  nodes: [node-1, node-2]
  world:
    - {ip: 203.0.113.11, ports: [80/TCP, 443/TCP, 53/UDP]}
  probes:
    - from: {ip: 203.0.113.2, via: node-2}
      to: {node: node-1}
      port: 30080
      expect: {verdict: allowed, backend: [x/a, x/b], sourceIP: 203.0.113.2}
    - from: {ip: 203.0.113.2, via: node-1}
      to: {ip: 198.51.100.10}
      port: 80
      expect: {verdict: allowed, backend: x/a, sourceIP: {node: node-1}}
`))
	if err != nil {
		t.Fatal(err)
	}
	w := s.Spec.World
	if len(w) != 1 || w[0].IP != "203.0.113.11" || len(w[0].Ports) != 3 || w[0].Ports[2].Port != 53 || w[0].Ports[2].Protocol != "UDP" || w[0].Line != 7 {
		t.Errorf("world = %+v", w)
	}
	p := s.Spec.Probes
	if p[0].From.IP != "203.0.113.2" || p[0].From.Via != "node-2" || p[0].To.Node != "node-1" || p[0].Port.Number != 30080 {
		t.Errorf("probe 0 = %+v", p[0])
	}
	if got := p[0].Expect.Backend.Pods; len(got) != 2 || got[1] != "x/b" {
		t.Errorf("probe 0 backends = %v", got)
	}
	if sip := p[0].Expect.SourceIP; sip == nil || sip.IP != "203.0.113.2" || sip.Node != "" {
		t.Errorf("probe 0 sourceIP = %+v", sip)
	}
	if sip := p[1].Expect.SourceIP; sip == nil || sip.Node != "node-1" || sip.IP != "" {
		t.Errorf("probe 1 sourceIP = %+v", sip)
	}
}
