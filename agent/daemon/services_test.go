package daemon

import (
	"context"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kestrelnet/kestrel/datapath"
)

func TestTheAgentReportsAndWritesServicesFromTheAPI(t *testing.T) {
	ready, notReady := true, false
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", ResourceVersion: "5"},
		Spec: corev1.ServiceSpec{
			ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"}, Type: corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")}},
		},
	}
	port, name, proto := int32(8080), "http", corev1.ProtocolTCP
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-1", ResourceVersion: "6", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}, NodeName: ptr("node-1")},
			{Addresses: []string{"10.244.1.5"}, Conditions: discoveryv1.EndpointConditions{Ready: &notReady}, NodeName: ptr("node-2")},
		},
	}
	c := newCluster(t, svc, slice)
	c.eventually("the service is reported", func() bool { return len(c.d.Services().Services) == 1 })
	got := c.d.Services().Services[0]
	if got.Frontend != "10.96.0.10:80/TCP" || got.Type != "ClusterIP" || got.Action != "forward" ||
		len(got.Backends) != 1 || got.Backends[0].Address != "10.244.0.5:8080" || !got.Backends[0].Local {
		t.Fatalf("service %+v", got)
	}
	written := c.dp.serviceList()
	if len(written) != 1 || written[0].Frontend.String() != "10.96.0.10:80" || written[0].Protocol != 6 || written[0].ID == 0 ||
		len(written[0].Backends) != 1 || written[0].Backends[0].String() != "10.244.0.5:8080" {
		t.Fatalf("services written to the datapath: %+v", written)
	}
	if st := c.d.Status(context.Background()); st.Revisions["services"] == 0 || st.Revisions["endpointslices"] == 0 {
		t.Fatalf("service streams not in the revisions: %v", st.Revisions)
	}

	// Flows name the Service at their ends: a connection to the backend
	// (socket LB already chose it) and the reply from it; another port of
	// the same pod is no Service's.
	client, backend := netip.MustParseAddr("10.244.0.9"), netip.MustParseAddr("10.244.0.5")
	for _, ev := range []datapath.Event{
		{Src: client, Dst: backend, SrcPort: 40000, DstPort: 8080, Protocol: 6, Verdict: datapath.VerdictForwarded},
		{Src: backend, Dst: client, SrcPort: 8080, DstPort: 40000, Protocol: 6, Verdict: datapath.VerdictForwarded, CT: datapath.CTReply},
		{Src: client, Dst: backend, SrcPort: 40001, DstPort: 9090, Protocol: 6, Verdict: datapath.VerdictForwarded},
	} {
		c.d.RecordFlow(ev)
	}
	flows := c.d.Flows(0).Flows
	if n := len(flows); n != 3 || flows[0].DstPeer.Service != "default/web" || flows[0].SrcPeer.Service != "" ||
		flows[1].SrcPeer.Service != "default/web" || flows[2].DstPeer.Service != "" {
		t.Fatalf("flows' services: %+v", flows)
	}
}

func ptr[T any](v T) *T { return &v }

// With kube-proxy serving Services on the node (--kube-proxy-replacement=false)
// the agent neither watches them nor leaves any in the datapath: an earlier
// agent's services, adopted with the pinned maps, are taken out.
func TestAnAgentBesideKubeProxyWritesNoServices(t *testing.T) {
	ready := true
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", ResourceVersion: "5"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"}, Type: corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}}},
	}
	port, proto := int32(8080), corev1.ProtocolTCP
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-1", ResourceVersion: "6", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Port: &port, Protocol: &proto}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
	}
	c := newCluster(t, svc, slice)
	written := func() int { return len(c.dp.serviceList()) }
	c.eventually("the replacing agent writes the service", func() bool { return written() == 1 })

	c.stop()
	c.cfg.KubeProxy = true
	c.start()
	c.eventually("the agent beside kube-proxy takes the service out", func() bool {
		return c.d.Status(context.Background()).Revisions["namespaces"] != 0 && written() == 0
	})
	if got := c.d.Services().Services; len(got) != 0 {
		t.Fatalf("services reported beside kube-proxy: %+v", got)
	}
	revs := c.d.Status(context.Background()).Revisions
	if _, ok := revs["services"]; ok {
		t.Fatalf("services are watched beside kube-proxy: revisions %v", revs)
	}
	if _, ok := revs["endpointslices"]; ok {
		t.Fatalf("endpoint slices are watched beside kube-proxy: revisions %v", revs)
	}
}
