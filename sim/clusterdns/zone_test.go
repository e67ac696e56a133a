package clusterdns

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ask(z *Zone, name string, qtype uint16) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	return z.Answer(q)
}

func TestZone(t *testing.T) {
	f := false
	z := NewZone(map[string][]netip.Addr{"one.one.one.one": {netip.MustParseAddr("203.0.113.11")}},
		[]*corev1.Service{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "web"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.20"}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "db"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "ext"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "one.one.one.one"}},
		},
		[]*discoveryv1.EndpointSlice{{
			ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "db-1", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
			Endpoints:  []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.10"}}, {Addresses: []string{"10.244.0.11"}, Conditions: discoveryv1.EndpointConditions{Ready: &f}}},
		}})
	for _, c := range []struct {
		name  string
		rcode int
		want  []string
	}{
		{"one.one.one.one.", dns.RcodeSuccess, []string{"203.0.113.11"}},
		{"web.x.svc.cluster.local.", dns.RcodeSuccess, []string{"10.96.0.20"}},
		{"db.x.svc.cluster.local.", dns.RcodeSuccess, []string{"10.244.0.10"}},
		{"ext.x.svc.cluster.local.", dns.RcodeSuccess, []string{"CNAME one.one.one.one.", "203.0.113.11"}},
		{"nope.x.svc.cluster.local.", dns.RcodeNameError, nil},
	} {
		m := ask(z, c.name, dns.TypeA)
		var got []string
		for _, rr := range m.Answer {
			switch v := rr.(type) {
			case *dns.A:
				got = append(got, v.A.String())
			case *dns.CNAME:
				got = append(got, "CNAME "+v.Target)
			}
		}
		if m.Rcode != c.rcode || len(got) != len(c.want) {
			t.Fatalf("%s: rcode %d answers %v, want %d %v", c.name, m.Rcode, got, c.rcode, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Fatalf("%s: answers %v, want %v", c.name, got, c.want)
			}
		}
	}
	if m := ask(z, "one.one.one.one.", dns.TypeAAAA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
		t.Fatalf("AAAA of a v4-only name: %v", m)
	}
}
