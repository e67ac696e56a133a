package policy

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kestrelnet/kestrel/agent/identity"
)

// resolveWith resolves docs against the given pods (namespaces x and y),
// with allow-localhost off so the keys are exactly the rules'.
func resolveWith(t *testing.T, docs string, pods ...*corev1.Pod) *Result {
	t.Helper()
	objs, err := ParseYAML([]byte(docs), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Resolve(Input{EnforceLocalhost: true, Namespaces: []*corev1.Namespace{ns("x", "team=a"), ns("y", "team=b")}, Pods: pods, Policies: objs})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func sortedKeys(t *testing.T, r *Result, ep string) string {
	got := keys(t, r, ep)
	slices.Sort(got)
	return strings.Join(got, "\n")
}

func wantKeys(t *testing.T, r *Result, ep string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := sortedKeys(t, r, ep); got != strings.Join(want, "\n") {
		t.Errorf("%s keys:\n  %s\nwant:\n  %s", ep, strings.ReplaceAll(got, "\n", "\n  "), strings.Join(want, "\n  "))
	}
}

func TestICMPTypeZeroIsExactAndPortZeroIsAnyPort(t *testing.T) {
	r := resolveYAML(t, cnpHeader+"spec: {endpointSelector: {matchLabels: {app: a}}, ingress: [{icmps: [{fields: [{type: 0}, {type: EchoReply, family: IPv6}]}]}, {toPorts: [{ports: [{port: '0', protocol: TCP}]}]}]}")
	var icmp, tcp []Key
	for k := range r.Endpoints["x/a"].Policy.Entries {
		switch k.Protocol {
		case ProtoICMP, ProtoICMPv6:
			icmp = append(icmp, k)
		case ProtoTCP:
			tcp = append(tcp, k)
		}
	}
	if len(icmp) != 2 {
		t.Fatalf("icmp keys %v, want two", icmp)
	}
	for _, k := range icmp {
		if k.AnyPort {
			t.Errorf("%v: an ICMP type rule became any type", k)
		}
		if k.Protocol == ProtoICMP && k.PortLo != 0 || k.Protocol == ProtoICMPv6 && k.PortLo != 129 {
			t.Errorf("%v: wrong type", k)
		}
	}
	if len(tcp) != 1 || !tcp[0].AnyPort {
		t.Fatalf("TCP port 0 gave %v, want one any-port key", tcp)
	}
}

func TestWorldIsPerFamily(t *testing.T) {
	cases := []struct{ peers, want string }{
		{"toCIDR: [0.0.0.0/0]", "egress world-ipv4 any * allow"},
		{"toCIDR: ['::/0']", "egress world-ipv6 any * allow"},
		{"toCIDR: [0.0.0.0/0, '::/0']", "egress world any * allow\negress world-ipv4 any * allow\negress world-ipv6 any * allow"},
		{"toEntities: [world-ipv4]", "egress world-ipv4 any * allow"},
		{"toEntities: [world-ipv6]", "egress world-ipv6 any * allow"},
		{"toEntities: [world]", "egress world any * allow\negress world-ipv4 any * allow\negress world-ipv6 any * allow"},
	}
	for _, tc := range cases {
		r := resolveYAML(t, cnpHeader+"spec: {endpointSelector: {matchLabels: {app: a}}, egress: [{"+tc.peers+"}]}")
		if got := sortedKeys(t, r, "x/a"); got != tc.want {
			t.Errorf("%s:\n  %s\nwant:\n  %s", tc.peers, got, tc.want)
		}
	}
}

func TestWorldEntitySelectsCIDRIdentitiesOfItsFamilyOnly(t *testing.T) {
	r := resolveYAML(t, cnpHeader+"spec: {endpointSelector: {matchLabels: {app: a}}, egress: [{toEntities: [world-ipv6]}, {toCIDR: [192.0.2.0/24, '2001:db8::/32'], toPorts: [{ports: [{port: '1'}]}]}]}")
	got := sortedKeys(t, r, "x/a")
	if !strings.Contains(got, "egress 2001:db8::/32 any * allow") || strings.Contains(got, "egress 192.0.2.0/24 any * allow") {
		t.Fatalf("world-ipv6 keys:\n%s", got)
	}
}

func TestIPBlockIsDecidedPerAddress(t *testing.T) {
	policy := knpHeader + "spec: {podSelector: {matchLabels: {app: srv}}, ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: c}}}]}, {from: [{ipBlock: {cidr: 10.0.5.0/24}}], ports: [{port: 443}]}]}"
	inside, outside := pod("x/in", "10.0.5.7", "app=c"), pod("x/out", "10.0.6.7", "app=c")
	r := resolveWith(t, policy, pod("x/srv", "10.0.0.1", "app=srv"), inside, outside)
	if r.Endpoints["x/in"].Identity != r.Endpoints["x/out"].Identity {
		t.Fatal("pods with the same labels got different pod identities")
	}
	// The pods share an identity but the block holds only one of them: each
	// address gets an identity of its own, and only the inside one is in
	// the block's key.
	wantKeys(t, r, "x/srv",
		"ingress x/in any * allow", "ingress 10.0.5.7/32 any * allow", "ingress 10.0.6.7/32 any * allow",
		"ingress 10.0.5.7/32 TCP 443 allow", "ingress 10.0.5.0/24 TCP 443 allow")
	ipc := map[string]identity.NumericIdentity{}
	for _, e := range r.IPCache {
		ipc[e.Prefix.String()] = e.Identity
	}
	in, out := ipc["10.0.5.7/32"], ipc["10.0.6.7/32"]
	if in == out || !in.IsLocal() || !out.IsLocal() {
		t.Fatalf("ipcache gives the two addresses %d and %d, want two distinct address identities", in, out)
	}
	ls, _ := r.Identities.Labels(in)
	if v, ok := ls.Get(identity.SourceK8s, "app"); !ok || v != "c" {
		t.Fatalf("address identity labels %s lack the pod's labels", ls)
	}
}

func TestIPBlockMatchesTheAddressOfADualStackPodInItsFamily(t *testing.T) {
	c := pod("x/c", "10.0.5.7", "app=c")
	c.Status.PodIPs = append(c.Status.PodIPs, corev1.PodIP{IP: "fd00::5:7"})
	r := resolveWith(t, knpHeader+"spec: {podSelector: {matchLabels: {app: srv}}, ingress: [{from: [{ipBlock: {cidr: 10.0.5.0/24}}]}]}",
		pod("x/srv", "10.0.0.1", "app=srv"), c)
	wantKeys(t, r, "x/srv", "ingress 10.0.5.7/32 any * allow", "ingress 10.0.5.0/24 any * allow")
	for _, e := range r.IPCache {
		if e.Prefix == netip.MustParsePrefix("fd00::5:7/128") && e.Identity == r.Endpoints["x/c"].Identity {
			t.Fatal("the IPv6 address kept the pod identity the IPv4 block selects")
		}
	}
}

func TestUnsplitPodsKeepTheirIdentityInTheIPCache(t *testing.T) {
	r := resolveWith(t, knpHeader+"spec: {podSelector: {matchLabels: {app: srv}}, ingress: [{from: [{ipBlock: {cidr: 10.0.5.0/24}}]}]}",
		pod("x/srv", "10.0.0.1", "app=srv"), pod("x/c", "10.0.5.7", "app=c"))
	wantKeys(t, r, "x/srv", "ingress x/c any * allow", "ingress 10.0.5.0/24 any * allow")
}

func TestRequirementsNarrowL4OnlyRulesAndNetworkPolicyPeers(t *testing.T) {
	req := cnpHeader + "spec: {endpointSelector: {matchLabels: {app: a}}, ingress: [{fromRequires: [{matchLabels: {app: b}}]}]}\n---\n"
	// An L4-only rule: "any peer" becomes the identities the requirement admits.
	r := resolveYAML(t, req+strings.Replace(cnpHeader, "name: p", "name: q", 1)+"spec: {endpointSelector: {matchLabels: {app: a}}, ingress: [{toPorts: [{ports: [{port: '80', protocol: TCP}]}]}]}")
	wantKeys(t, r, "x/a", "ingress x/b TCP 80 allow")
	// A NetworkPolicy peer is narrowed the same way.
	r = resolveYAML(t, req+knpHeader+"spec: {podSelector: {matchLabels: {app: a}}, ingress: [{from: [{namespaceSelector: {}}]}]}")
	wantKeys(t, r, "x/a", "ingress x/b any * allow")
	// And a NetworkPolicy rule without peers (any source).
	r = resolveYAML(t, req+knpHeader+"spec: {podSelector: {matchLabels: {app: a}}, ingress: [{ports: [{port: 53, protocol: UDP}]}]}")
	wantKeys(t, r, "x/a", "ingress x/b UDP 53 allow")
}

func TestRequirementsLeaveDeniesAsWritten(t *testing.T) {
	r := resolveYAML(t, cnpHeader+"spec: {endpointSelector: {matchLabels: {app: a}}, ingress: [{fromRequires: [{matchLabels: {app: b}}]}], ingressDeny: [{fromEntities: [host]}]}")
	wantKeys(t, r, "x/a", "ingress host any * deny")
}

func TestPresentButEmptyPeerListsSelectNothing(t *testing.T) {
	for _, peers := range []string{"fromEndpoints: []", "fromCIDR: []", "fromCIDRSet: []", "fromEntities: []"} {
		r := resolveYAML(t, cnpHeader+"spec: {endpointSelector: {matchLabels: {app: a}}, ingress: [{"+peers+", toPorts: [{ports: [{port: '80', protocol: TCP}]}]}]}")
		if ep := r.Endpoints["x/a"]; !ep.Policy.IngressEnforced || len(ep.Policy.Entries) != 0 {
			t.Errorf("%s: enforced=%v keys %v, want default deny and no key", peers, ep.Policy.IngressEnforced, keys(t, r, "x/a"))
		}
	}
	for _, peers := range []string{"toEndpoints: []", "toCIDR: []", "toCIDRSet: []", "toEntities: []"} {
		r := resolveYAML(t, cnpHeader+"spec: {endpointSelector: {matchLabels: {app: a}}, egress: [{"+peers+"}]}")
		if ep := r.Endpoints["x/a"]; !ep.Policy.EgressEnforced || len(ep.Policy.Entries) != 0 {
			t.Errorf("%s: enforced=%v keys %v, want default deny and no key", peers, ep.Policy.EgressEnforced, keys(t, r, "x/a"))
		}
	}
	// Left out, the list is an L3 wildcard.
	r := resolveYAML(t, cnpHeader+"spec: {endpointSelector: {matchLabels: {app: a}}, ingress: [{toPorts: [{ports: [{port: '80', protocol: TCP}]}]}]}")
	wantKeys(t, r, "x/a", "ingress any TCP 80 allow")
}

func TestNetworkPolicySelectorsSeeCiliumDerivedLabels(t *testing.T) {
	sa := pod("y/dns", "10.0.1.9", "k8s-app=kube-dns")
	sa.Spec.ServiceAccountName = "coredns"
	cases := []struct{ name, peer string }{
		{"service account", "{namespaceSelector: {}, podSelector: {matchLabels: {io.cilium.k8s.policy.serviceaccount: coredns}}}"},
		{"cluster", "{namespaceSelector: {}, podSelector: {matchLabels: {io.cilium.k8s.policy.cluster: default, k8s-app: kube-dns}}}"},
		{"namespace label as an expression", "{namespaceSelector: {}, podSelector: {matchExpressions: [{key: io.kubernetes.pod.namespace, operator: In, values: [y]}]}}"},
		{"namespace's own labels", "{namespaceSelector: {}, podSelector: {matchLabels: {io.cilium.k8s.namespace.labels.team: b}}}"},
	}
	for _, tc := range cases {
		r := resolveWith(t, knpHeader+"spec: {podSelector: {matchLabels: {app: a}}, policyTypes: [Egress], egress: [{to: ["+tc.peer+"]}]}",
			pod("x/a", "10.0.0.1", "app=a"), sa)
		wantKeys(t, r, "x/a", "egress y/dns any * allow")
	}
	// The policy's own podSelector sees them too.
	r := resolveWith(t, strings.Replace(knpHeader, "namespace: x", "namespace: y", 1)+"spec: {podSelector: {matchLabels: {io.cilium.k8s.policy.serviceaccount: coredns}}, policyTypes: [Ingress]}",
		pod("x/a", "10.0.0.1", "app=a"), sa)
	if !r.Endpoints["y/dns"].Policy.IngressEnforced {
		t.Error("a podSelector on the service account label did not select the pod")
	}
}

const cidrGroupDoc = "apiVersion: cilium.io/v2alpha1\nkind: CiliumCIDRGroup\nmetadata: {name: partners, labels: {kind: partner}}\nspec: {externalCIDRs: [192.0.2.0/24, '2001:db8::/32']}\n---\n"

func TestCIDRGroupsResolveByRefAndBySelector(t *testing.T) {
	for _, set := range []string{"{cidrGroupRef: partners}", "{cidrGroupSelector: {matchLabels: {kind: partner}}}"} {
		r := resolveYAML(t, cidrGroupDoc+cnpHeader+"spec: {endpointSelector: {matchLabels: {app: a}}, egress: [{toCIDRSet: ["+set+"]}], egressDeny: [{toCIDRSet: ["+set+"], toPorts: [{ports: [{port: '25', protocol: TCP}]}]}]}")
		wantKeys(t, r, "x/a", "egress 192.0.2.0/24 any * allow", "egress 2001:db8::/32 any * allow",
			"egress 192.0.2.0/24 TCP 25 deny", "egress 2001:db8::/32 TCP 25 deny")
	}
}

func TestCIDRGroupExceptAndMissingGroups(t *testing.T) {
	r := resolveYAML(t, cidrGroupDoc+cnpHeader+"spec: {endpointSelector: {matchLabels: {app: a}}, egress: [{toCIDRSet: [{cidrGroupRef: partners, except: [192.0.2.128/25]}]}, {toCIDRSet: [{cidrGroupRef: nobody}], toPorts: [{ports: [{port: '80', protocol: TCP}]}]}]}")
	wantKeys(t, r, "x/a", "egress 192.0.2.0/24 any * allow", "egress 2001:db8::/32 any * allow")
	// An empty group selects nothing either.
	r = resolveYAML(t, "apiVersion: cilium.io/v2\nkind: CiliumCIDRGroup\nmetadata: {name: partners}\nspec: {externalCIDRs: []}\n---\n"+
		cnpHeader+"spec: {endpointSelector: {matchLabels: {app: a}}, egress: [{toCIDRSet: [{cidrGroupRef: partners}], toPorts: [{ports: [{port: '80', protocol: TCP}]}]}]}")
	wantKeys(t, r, "x/a")
}

// Cilium's connectivity test selects on io.kubernetes.pod.namespace inside a
// plain NetworkPolicy podSelector (client-egress-to-echo-knp). Applied in
// kube-system, its DNS peer must select the DNS pod there: the label is one
// Cilium derives, not one the pod carries.
func TestConnectivityManifestSelectsOnDerivedNamespaceLabel(t *testing.T) {
	path := filepath.Join(corpusDir(t), "cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/client-egress-to-echo-knp.yaml")
	objs, err := ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].NetworkPolicy == nil {
		t.Fatalf("%s: want one NetworkPolicy, got %v", path, objs)
	}
	objs[0].Namespace = "kube-system"
	pods := []*corev1.Pod{
		pod("kube-system/client", "10.0.0.1", "kind=client"),
		pod("kube-system/dns", "10.0.0.53", "k8s-app=kube-dns"),
		pod("kube-system/other", "10.0.0.54", "k8s-app=other"),
	}
	res, err := Resolve(Input{EnforceLocalhost: true, Pods: pods, Policies: objs})
	if err != nil {
		t.Fatal(err)
	}
	dns := res.Endpoints["kube-system/dns"].Identity
	var tcp53 []identity.NumericIdentity
	for k := range res.Endpoints["kube-system/client"].Policy.Entries {
		if k.Protocol == ProtoTCP && k.PortLo == 53 {
			tcp53 = append(tcp53, k.Identity)
		}
	}
	if len(tcp53) != 1 || tcp53[0] != dns {
		t.Fatalf("TCP/53 keys for identities %v, want only the DNS pod's %d", tcp53, dns)
	}
}
