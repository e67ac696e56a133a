package policy

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kestrelnet/kestrel/agent/identity"
)

func ns(name string, labels ...string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: kv(labels)}}
}

func kv(pairs []string) map[string]string {
	m := map[string]string{}
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		m[k] = v
	}
	return m
}

// pod builds a pod "ns/name" with an IP and labels; "port:NAME=80/TCP" entries
// become named container ports.
func pod(key, ip string, labels ...string) *corev1.Pod {
	nsName, name, _ := strings.Cut(key, "/")
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: nsName, Name: name}}
	var ls []string
	for _, l := range labels {
		if rest, ok := strings.CutPrefix(l, "port:"); ok {
			n, num, _ := strings.Cut(rest, "=")
			num, proto, _ := strings.Cut(num, "/")
			var port int32
			for _, c := range num {
				port = port*10 + int32(c-'0')
			}
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Ports: []corev1.ContainerPort{{Name: n, ContainerPort: port, Protocol: corev1.Protocol(proto)}}})
			continue
		}
		ls = append(ls, l)
	}
	p.Labels = kv(ls)
	p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	return p
}

func testCluster() ([]*corev1.Namespace, []*corev1.Pod) {
	return []*corev1.Namespace{ns("x", "team=a"), ns("y", "team=b")},
		[]*corev1.Pod{
			pod("x/a", "10.0.0.1", "app=a", "port:http=8080/TCP"),
			pod("x/b", "10.0.0.2", "app=b", "port:http=9090/TCP"),
			pod("y/a", "10.0.1.1", "app=a", "port:http=7070/TCP"),
		}
}

// resolveYAML resolves with allow-localhost off, so the keys are exactly those
// the rules produce (TestTheLocalHostAlwaysReachesItsPods covers the default).
func resolveYAML(t *testing.T, docs string) *Result {
	t.Helper()
	return resolveInput(t, docs, Input{EnforceLocalhost: true})
}

func resolveInput(t *testing.T, docs string, in Input) *Result {
	t.Helper()
	objs, err := ParseYAML([]byte(docs), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in.Namespaces, in.Pods = testCluster()
	in.Policies = objs
	res, err := Resolve(in)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// keys renders an endpoint's state as "dir id proto port verdict" lines, with
// pod identities named by pod key ("x/a") so expectations stay readable.
func keys(t *testing.T, r *Result, ep string) []string {
	t.Helper()
	e := r.Endpoints[ep]
	if e == nil {
		t.Fatalf("no endpoint %s", ep)
	}
	names := map[identity.NumericIdentity]string{}
	for _, k := range r.EndpointKeys() {
		id := r.Endpoints[k].Identity
		if names[id] == "" {
			names[id] = k
		}
	}
	var out []string
	for _, k := range e.Policy.SortedKeys() {
		en := e.Policy.Entries[k]
		id := names[k.Identity]
		switch {
		case k.Identity == 0:
			id = "any"
		case identity.ReservedName(k.Identity) != "":
			id = identity.ReservedName(k.Identity)
		case k.Identity.IsLocal():
			ls, _ := r.Identities.Labels(k.Identity)
			id = ls[0].Key
		}
		v := "allow"
		if en.Deny {
			v = "deny"
		} else if en.ProxyPort != 0 {
			v = "proxy"
		}
		port := "*"
		if k.Protocol != ProtoAny && !k.AnyPort {
			port = itoa(int(k.PortLo))
			if k.PortHi > k.PortLo {
				port += "-" + itoa(int(k.PortHi))
			}
		}
		out = append(out, strings.Join([]string{k.Direction.String(), id, protoName(k.Protocol), port, v}, " "))
	}
	return out
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

const knpHeader = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\n"
const cnpHeader = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p, namespace: x}\n"
const ccnpHeader = "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: p}\n"

func TestResolve(t *testing.T) {
	cases := []struct {
		name            string
		policy          string
		endpoint        string
		ingress, egress bool
		want            []string
	}{
		{"a NetworkPolicy with no rules isolates ingress only and allows nothing", knpHeader +
			"spec: {podSelector: {}}", "x/a", true, false, nil},
		{"a NetworkPolicy with egress rules isolates egress by default", knpHeader +
			"spec: {podSelector: {}, egress: [{}]}", "x/a", true, true, []string{"egress any any * allow"}},
		{"ingress [{}] allows every source", knpHeader +
			"spec: {podSelector: {}, ingress: [{}]}", "x/a", true, false, []string{"ingress any any * allow"}},
		{"a podSelector peer selects pods in the policy namespace only", knpHeader +
			"spec: {podSelector: {matchLabels: {app: b}}, ingress: [{from: [{podSelector: {matchLabels: {app: a}}}]}]}",
			"x/b", true, false, []string{"ingress x/a any * allow"}},
		{"a namespaceSelector peer selects all pods of matching namespaces", knpHeader +
			"spec: {podSelector: {matchLabels: {app: b}}, ingress: [{from: [{namespaceSelector: {matchLabels: {team: b}}}]}]}",
			"x/b", true, false, []string{"ingress y/a any * allow"}},
		{"podSelector and namespaceSelector in one peer are AND-ed", knpHeader +
			"spec: {podSelector: {matchLabels: {app: b}}, ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: a}}}]}]}",
			"x/b", true, false, []string{"ingress x/a any * allow", "ingress y/a any * allow"}},
		{"ports default to TCP and endPort makes a range", knpHeader +
			"spec: {podSelector: {}, ingress: [{ports: [{port: 80}, {protocol: UDP, port: 1000, endPort: 2000}]}]}",
			"x/a", true, false, []string{"ingress any TCP 80 allow", "ingress any UDP 1000-2000 allow"}},
		{"an ingress named port resolves against the selected pod", knpHeader +
			"spec: {podSelector: {}, ingress: [{ports: [{port: http}]}]}",
			"x/b", true, false, []string{"ingress any TCP 9090 allow"}},
		{"an egress named port resolves per destination pod", knpHeader +
			"spec: {podSelector: {matchLabels: {app: a}}, policyTypes: [Egress], egress: [{ports: [{port: http}]}]}",
			"x/a", false, true, []string{"egress x/a TCP 8080 allow", "egress x/b TCP 9090 allow", "egress y/a TCP 7070 allow"}},
		{"ipBlock selects pods by IP and the prefixes inside it minus except", knpHeader +
			"spec: {podSelector: {matchLabels: {app: a}}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.1.0/24]}}]}]}",
			"x/a", true, false, []string{"ingress x/a any * allow", "ingress x/b any * allow", "ingress 10.0.0.0/16 any * allow"}},
		{"ipBlock 0.0.0.0/0 with except selects world but not the excepted prefix", knpHeader +
			"spec: {podSelector: {matchLabels: {app: a}}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}]}]}",
			"x/a", false, true, []string{"egress world-ipv4 any * allow"}},
		{"an empty CNP ingress rule turns on default deny but allows nothing", cnpHeader +
			"spec: {endpointSelector: {}, ingress: [{}]}", "x/a", true, false, nil},
		{"an empty CNP egress rule list is not a selection", cnpHeader +
			"spec: {endpointSelector: {}, egress: []}", "x/a", false, false, nil},
		{"an L4-only CNP rule allows the port from any identity", cnpHeader +
			"spec: {endpointSelector: {}, ingress: [{toPorts: [{ports: [{port: '80', protocol: TCP}]}]}]}",
			"x/a", true, false, []string{"ingress any TCP 80 allow"}},
		{"CNP fromEndpoints is limited to the policy namespace", cnpHeader +
			"spec: {endpointSelector: {matchLabels: {app: b}}, ingress: [{fromEndpoints: [{matchLabels: {app: a}}]}]}",
			"x/b", true, false, []string{"ingress x/a any * allow"}},
		{"CNP fromEndpoints naming the namespace label crosses namespaces", cnpHeader +
			"spec: {endpointSelector: {matchLabels: {app: b}}, ingress: [{fromEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: y}}]}]}",
			"x/b", true, false, []string{"ingress y/a any * allow"}},
		{"CCNP fromEndpoints {} selects every pod in the cluster", ccnpHeader +
			"spec: {endpointSelector: {matchLabels: {app: b}}, ingress: [{fromEndpoints: [{}]}]}",
			"x/b", true, false, []string{"ingress x/a any * allow", "ingress x/b any * allow", "ingress y/a any * allow"}},
		{"reserved:host selectors select the host identity", cnpHeader +
			"spec: {endpointSelector: {}, ingress: [{fromEndpoints: [{matchLabels: {reserved:host: ''}}]}]}",
			"x/a", true, false, []string{"ingress host any * allow"}},
		{"toPorts ANY expands to TCP, UDP and SCTP", cnpHeader +
			"spec: {endpointSelector: {}, egress: [{toPorts: [{ports: [{port: '53', protocol: ANY}]}]}]}",
			"x/a", false, true, []string{"egress any TCP 53 allow", "egress any UDP 53 allow", "egress any SCTP 53 allow"}},
		{"port 0 means every port of the protocol", cnpHeader +
			"spec: {endpointSelector: {}, egress: [{toPorts: [{ports: [{port: '0', protocol: UDP}]}]}]}",
			"x/a", false, true, []string{"egress any UDP * allow"}},
		{"toCIDR selects CIDR identities but not pods inside the prefix", cnpHeader +
			"spec: {endpointSelector: {matchLabels: {app: a}}, egress: [{toCIDR: [10.0.0.0/8]}]}",
			"x/a", false, true, []string{"egress 10.0.0.0/8 any * allow"}},
		{"entity cluster covers reserved in-cluster identities and pods", cnpHeader +
			"spec: {endpointSelector: {matchLabels: {app: a}}, egress: [{toEntities: [cluster]}]}",
			"x/a", false, true, []string{"egress host any * allow", "egress unmanaged any * allow", "egress health any * allow",
				"egress init any * allow", "egress remote-node any * allow", "egress kube-apiserver any * allow",
				"egress x/a any * allow", "egress x/b any * allow", "egress y/a any * allow"}},
		{"entity all is the any-identity wildcard", cnpHeader +
			"spec: {endpointSelector: {}, egress: [{toEntities: [all]}]}", "x/a", false, true, []string{"egress any any * allow"}},
		{"fromRequires narrows every fromEndpoints of the policy", cnpHeader +
			"spec: {endpointSelector: {matchLabels: {app: b}}, ingress: [{fromEndpoints: [{}]}, {fromRequires: [{matchLabels: {app: a}}]}]}",
			"x/b", true, false, []string{"ingress x/a any * allow"}},
		{"icmps become ICMP keys with the type as port", cnpHeader +
			"spec: {endpointSelector: {}, egress: [{icmps: [{fields: [{type: 8}, {type: EchoRequest, family: IPv6}]}]}]}",
			"x/a", false, true, []string{"egress any ICMP 8 allow", "egress any ICMPv6 128 allow"}},
		{"L7 rules redirect to a proxy port", cnpHeader +
			"spec: {endpointSelector: {}, ingress: [{toPorts: [{ports: [{port: '80', protocol: TCP}], rules: {http: [{method: GET}]}}]}]}",
			"x/a", true, false, []string{"ingress any TCP 80 proxy"}},
		{"a deny-only policy still turns on default deny", cnpHeader +
			"spec: {endpointSelector: {}, ingressDeny: [{fromEntities: [world]}]}",
			"x/a", true, false, []string{"ingress world any * deny", "ingress world-ipv4 any * deny", "ingress world-ipv6 any * deny"}},
		{"enableDefaultDeny false keeps the direction unenforced", cnpHeader +
			"spec: {endpointSelector: {}, enableDefaultDeny: {ingress: false}, ingressDeny: [{fromEntities: [world]}]}",
			"x/a", false, false, []string{"ingress world any * deny", "ingress world-ipv4 any * deny", "ingress world-ipv6 any * deny"}},
		{"deny wins over allow at the same key and over narrower allows", cnpHeader +
			"spec: {endpointSelector: {matchLabels: {app: b}}, ingress: [{fromEndpoints: [{matchLabels: {app: a}}], toPorts: [{ports: [{port: '80', protocol: TCP}]}]}, {fromEndpoints: [{matchLabels: {app: a}}]}], " +
			"ingressDeny: [{fromEndpoints: [{matchLabels: {app: a}}]}]}",
			"x/b", true, false, []string{"ingress x/a any * deny", "ingress x/a TCP 80 deny"}},
		{"toFQDNs is parsed but selects nothing yet", cnpHeader +
			"spec: {endpointSelector: {}, egress: [{toFQDNs: [{matchName: example.com}]}]}", "x/a", false, true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := resolveYAML(t, tc.policy)
			ep := r.Endpoints[tc.endpoint]
			if ep.Policy.IngressEnforced != tc.ingress || ep.Policy.EgressEnforced != tc.egress {
				t.Errorf("enforced ingress=%v egress=%v, want %v %v", ep.Policy.IngressEnforced, ep.Policy.EgressEnforced, tc.ingress, tc.egress)
			}
			got := keys(t, r, tc.endpoint)
			slices.Sort(got)
			slices.Sort(tc.want)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("keys:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestIPCacheHoldsPodAddressesAndEveryPolicyPrefix(t *testing.T) {
	r := resolveYAML(t, cnpHeader+"spec: {endpointSelector: {}, egress: [{toCIDRSet: [{cidr: 0.0.0.0/0, except: [192.168.0.0/16]}, {cidr: 172.16.0.0/12}]}]}")
	var got []string
	for _, e := range r.IPCache {
		got = append(got, e.Prefix.String())
	}
	want := "10.0.0.1/32 10.0.0.2/32 10.0.1.1/32 172.16.0.0/12 192.168.0.0/16"
	if strings.Join(got, " ") != want {
		t.Fatalf("ipcache prefixes %v, want %s", got, want)
	}
	for _, e := range r.IPCache {
		if e.Prefix == netip.MustParsePrefix("192.168.0.0/16") && !e.Identity.IsLocal() {
			t.Fatalf("except prefix has identity %d, want a local CIDR identity", e.Identity)
		}
	}
}

func TestResolveIsDeterministic(t *testing.T) {
	p := cnpHeader + "spec: {endpointSelector: {}, egress: [{toCIDR: [1.1.1.1/32, 2.2.2.2/32]}, {toPorts: [{ports: [{port: '80'}], rules: {http: [{}]}}, {ports: [{port: '81'}], rules: {http: [{}]}}]}]}"
	a, b := resolveYAML(t, p), resolveYAML(t, p)
	if strings.Join(keys(t, a, "x/a"), ";") != strings.Join(keys(t, b, "x/a"), ";") {
		t.Fatal("two resolutions of the same input differ")
	}
	for k, e := range a.Endpoints["x/a"].Policy.Entries {
		if e2 := b.Endpoints["x/a"].Policy.Entries[k]; e2.ProxyPort != e.ProxyPort {
			t.Fatalf("proxy port of %v differs: %d vs %d", k, e.ProxyPort, e2.ProxyPort)
		}
	}
}

func TestTheLocalHostAlwaysReachesItsPods(t *testing.T) {
	cases := []struct {
		name   string
		policy string
		want   []string
	}{
		{"default deny ingress still admits the host", knpHeader +
			"spec: {podSelector: {}, policyTypes: [Ingress]}",
			[]string{"ingress host any * allow"}},
		{"an egress-only policy adds nothing for the host", knpHeader +
			"spec: {podSelector: {}, policyTypes: [Egress]}",
			nil},
		{"an explicit deny of the host entity wins", cnpHeader +
			"spec: {endpointSelector: {}, ingressDeny: [{fromEntities: [host]}]}",
			[]string{"ingress host any * deny"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := resolveInput(t, tc.policy, Input{})
			got := keys(t, r, "x/a")
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("keys:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}
