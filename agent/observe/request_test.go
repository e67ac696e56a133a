package observe

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kestrelnet/kestrel/agent/api"
	observerpb "github.com/kestrelnet/kestrel/agent/hubbleapi/observer"
)

// Flows among x/a, x/b and y/c, each way, forwarded and dropped.
func mixedSource() *ringSource {
	src := newRingSource("node-1")
	peers := map[string]api.Peer{"x/a": podPeer("x", "a", "a"), "x/b": podPeer("x", "b", "b"), "y/c": podPeer("y", "c", "c")}
	ips := map[string]string{"x/a": "10.0.0.1", "x/b": "10.0.0.2", "y/c": "10.0.1.3"}
	ms := 0
	for _, from := range []string{"x/a", "x/b", "y/c"} {
		for _, to := range []string{"x/a", "x/b", "y/c"} {
			if from == to {
				continue
			}
			for _, verdict := range []string{"forwarded", "dropped"} {
				ms++
				f := api.Flow{TimeUnixNs: t0.Add(time.Duration(ms) * time.Millisecond).UnixNano(), Src: ips[from], Dst: ips[to],
					SrcPort: 40000, DstPort: 80, Protocol: 6, Direction: "ingress", Verdict: verdict,
					SrcPeer: peers[from], DstPeer: peers[to]}
				if verdict == "dropped" {
					f.Reason = "UNROUTABLE" // not a policy's: one Hubble flow each
				}
				src.add(f)
			}
		}
	}
	return src
}

func pairs(rs []*observerpb.GetFlowsResponse) []string {
	var out []string
	for _, r := range rs {
		f := r.GetFlow()
		out = append(out, f.GetSource().GetNamespace()+"/"+f.GetSource().GetPodName()+">"+
			f.GetDestination().GetNamespace()+"/"+f.GetDestination().GetPodName()+":"+f.GetVerdict().String())
	}
	return out
}

func TestQueryFilters(t *testing.T) {
	cl := dial(t, serve(t, NewServer(mixedSource(), "default")))
	for _, c := range []struct {
		name string
		q    Query
		want string
	}{
		{"pod either end, dropped", Query{Pod: []string{"x/a"}, Verdict: []string{"dropped"}},
			"x/a>x/b:DROPPED x/a>y/c:DROPPED x/b>x/a:DROPPED y/c>x/a:DROPPED"},
		{"from namespace to pod", Query{FromNamespace: []string{"x"}, ToPod: []string{"y/c"}},
			"x/a>y/c:FORWARDED x/a>y/c:DROPPED x/b>y/c:FORWARDED x/b>y/c:DROPPED"},
		{"label either end and ip", Query{Label: []string{"k8s:app=c"}, FromIP: []string{"10.0.0.2"}, Verdict: []string{"FORWARDED"}},
			"x/b>y/c:FORWARDED"},
		{"drop reason, last 1", Query{DropReason: []string{"STALE_OR_UNROUTABLE_IP"}, Number: 1}, "y/c>x/b:DROPPED"},
		{"first 1", Query{First: true, Number: 1}, "x/a>x/b:FORWARDED"},
	} {
		req, err := c.q.Request(time.Now())
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := strings.Join(pairs(collect(t, cl, req, 0)), " "); got != c.want {
			t.Errorf("%s:\n got  %s\n want %s", c.name, got, c.want)
		}
	}
}

func TestQueryRejectsBadValues(t *testing.T) {
	for _, q := range []Query{
		{Verdict: []string{"LOST"}}, {DropReason: []string{"NOT_A_REASON"}}, {Direction: []string{"sideways"}},
		{Port: []string{"http"}}, {Since: "yesterday"},
	} {
		if _, err := q.Request(time.Now()); err == nil {
			t.Errorf("%+v was accepted", q)
		}
	}
	req, err := Query{Since: "5m", Until: "2026-11-29T12:00:00Z"}.Request(t0.Add(time.Hour))
	if err != nil || !req.GetSince().AsTime().Equal(t0.Add(55*time.Minute)) || !req.GetUntil().AsTime().Equal(t0) {
		t.Errorf("since/until: %v, %v", req, err)
	}
}

func TestPrinterFormats(t *testing.T) {
	f := ToProto(api.Flow{TimeUnixNs: t0.UnixNano(), Node: "node-2", Src: "10.0.1.3", Dst: "10.0.0.1", SrcPort: 40000, DstPort: 80,
		Protocol: 6, TCPFlags: 0x02, Direction: "ingress", Verdict: "dropped", Reason: "POLICY_DENYLIST", SrcIdentity: 300, DstIdentity: 256,
		SrcPeer: podPeer("y", "c", "c"), DstPeer: podPeer("x", "a", "a"), Policies: []string{"CiliumNetworkPolicy/x/deny-c"}}, "default")
	r := &observerpb.GetFlowsResponse{ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: f}, NodeName: "node-2", Time: f.GetTime()}
	out := func(format string) string {
		var b bytes.Buffer
		p, err := NewPrinter(format, &b)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Print(r); err != nil {
			t.Fatal(err)
		}
		p.Close()
		return b.String()
	}
	var decoded struct {
		Flow struct {
			Verdict        string `json:"verdict"`
			DropReasonDesc string `json:"drop_reason_desc"`
			Destination    struct {
				PodName string `json:"pod_name"`
			} `json:"destination"`
			IngressDeniedBy []struct{ Name, Kind string } `json:"ingress_denied_by"`
		} `json:"flow"`
		NodeName string `json:"node_name"`
	}
	if err := json.Unmarshal([]byte(out("json")), &decoded); err != nil {
		t.Fatal(err)
	}
	if decoded.Flow.Verdict != "DROPPED" || decoded.Flow.DropReasonDesc != "POLICY_DENY" || decoded.Flow.Destination.PodName != "a" ||
		decoded.NodeName != "node-2" || len(decoded.Flow.IngressDeniedBy) != 1 || decoded.Flow.IngressDeniedBy[0].Name != "deny-c" {
		t.Errorf("json: %+v", decoded)
	}
	compact := out("compact")
	for _, want := range []string{"[node-2]: y/c:40000 (ID:300) -> x/a:80 (ID:256) ingress-drop DROPPED POLICY_DENY (TCP Flags: SYN) by CiliumNetworkPolicy/x/deny-c"} {
		if !strings.Contains(compact, want) {
			t.Errorf("compact %q lacks %q", compact, want)
		}
	}
	table := strings.Split(strings.TrimSpace(out("table")), "\n")
	if len(table) != 2 || !strings.HasPrefix(table[0], "TIMESTAMP") || !strings.Contains(table[1], "DROPPED POLICY_DENY") ||
		!strings.Contains(table[1], "y/c:40000 (ID:300)") {
		t.Errorf("table:\n%s", strings.Join(table, "\n"))
	}
	if _, err := NewPrinter("yaml", &bytes.Buffer{}); err == nil {
		t.Error("an unknown format was accepted")
	}
}
