package datapathstate

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kestrelnet/kestrel/agent/service"
	"github.com/kestrelnet/kestrel/datapath"
)

func TestFrontendsBecomeServicesAndIDsStayPut(t *testing.T) {
	web := service.Frontend{Addr: netip.MustParseAddr("10.96.0.10"), Port: 80, Protocol: corev1.ProtocolTCP, Kind: service.ClusterIP,
		Action: service.Forward, Backends: []service.Backend{{Addr: netip.MustParseAddr("10.244.0.5"), Port: 8080}}, AffinityTimeout: time.Minute}
	empty := service.Frontend{Addr: netip.MustParseAddr("10.96.0.11"), Port: 53, Protocol: corev1.ProtocolUDP, Kind: service.ClusterIP, Action: service.Reject}
	nodePort := service.Frontend{Addr: netip.MustParseAddr("172.30.0.11"), Port: 30080, Protocol: corev1.ProtocolTCP, Kind: service.NodePort,
		Action: service.Forward, Backends: web.Backends}
	var ids ServiceIDs
	got := Services(service.State{Frontends: []service.Frontend{web, empty, nodePort}}, &ids)
	if len(got) != 3 || got[0].Frontend.String() != "10.96.0.10:80" || got[0].AffinityTimeout != time.Minute || len(got[0].Backends) != 1 ||
		got[0].External || got[1].Protocol != 17 || !got[1].Reject || len(got[1].Backends) != 0 ||
		!got[2].External || got[2].Scope != datapath.ScopeInternal || len(got[2].Backends) != 1 {
		t.Fatalf("services %+v", got)
	}
	webID := got[0].ID
	again := Services(service.State{Frontends: []service.Frontend{empty, web}}, &ids)
	if again[1].ID != webID && again[0].ID != webID {
		t.Fatalf("web's id moved: %+v (was %d)", again, webID)
	}
	gone := Services(service.State{Frontends: []service.Frontend{empty}}, &ids)
	back := Services(service.State{Frontends: []service.Frontend{empty, web}}, &ids)
	if len(gone) != 1 || back[1].ID == webID {
		t.Fatalf("a removed frontend's id was reused at once: %+v", back)
	}
}

// externalTrafficPolicy Local: outside traffic gets the local endpoints (an
// external entry), the node's pods every endpoint (the internal one).
func TestLocalExternalPolicySplitsTheFrontend(t *testing.T) {
	local := service.Backend{Addr: netip.MustParseAddr("10.244.0.5"), Port: 8080, Local: true}
	remote := service.Backend{Addr: netip.MustParseAddr("10.244.1.5"), Port: 8080}
	lb := service.Frontend{Addr: netip.MustParseAddr("198.51.100.10"), Port: 80, Protocol: corev1.ProtocolTCP, Kind: service.LoadBalancer,
		Action: service.Forward, Backends: []service.Backend{local}, LocalOriginBackends: []service.Backend{local, remote},
		ExternalPolicyLocal: true, SourceRanges: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}
	noLocal := lb
	noLocal.Addr, noLocal.Action, noLocal.Backends = netip.MustParseAddr("198.51.100.11"), service.Drop, nil
	unspecified := lb
	unspecified.Addr, unspecified.Kind = netip.IPv6Unspecified(), service.NodePort
	var ids ServiceIDs
	got := Services(service.State{Frontends: []service.Frontend{lb, noLocal, unspecified}}, &ids)
	if len(got) != 4 {
		t.Fatalf("want two entries for each of two frontends and none for the unspecified address, got %+v", got)
	}
	ext, in := got[0], got[1]
	if ext.Scope != datapath.ScopeExternal || !ext.External || len(ext.Backends) != 1 || in.Scope != datapath.ScopeInternal || len(in.Backends) != 2 ||
		ext.ID == in.ID || len(ext.SourceRanges) != 1 {
		t.Fatalf("external %+v internal %+v", ext, in)
	}
	if d := got[2]; d.Scope != datapath.ScopeExternal || d.Reject || len(d.Backends) != 0 {
		t.Fatalf("no local endpoint: outside traffic is dropped, not rejected: %+v", d)
	}
	if i := got[3]; len(i.Backends) != 2 {
		t.Fatalf("the node's pods still reach every endpoint: %+v", i)
	}
}

// The difference of two States, applied to the first one's services, gives
// the second's, ids included, as Services of the second does.
func TestServicesDeltaIsTheDifferenceOfServices(t *testing.T) {
	be := func(a string, local bool) service.Backend {
		return service.Backend{Addr: netip.MustParseAddr(a), Port: 8080, Local: local}
	}
	web := service.Frontend{Addr: netip.MustParseAddr("10.96.0.10"), Port: 80, Protocol: corev1.ProtocolTCP, Kind: service.ClusterIP,
		Action: service.Forward, Backends: []service.Backend{be("10.244.0.5", true)}}
	lb := service.Frontend{Addr: netip.MustParseAddr("198.51.100.10"), Port: 80, Protocol: corev1.ProtocolTCP, Kind: service.LoadBalancer,
		Action: service.Forward, Backends: []service.Backend{be("10.244.0.5", true)}, LocalOriginBackends: []service.Backend{be("10.244.0.5", true), be("10.244.1.5", false)},
		ExternalPolicyLocal: true}
	dns := service.Frontend{Addr: netip.MustParseAddr("10.96.0.11"), Port: 53, Protocol: corev1.ProtocolUDP, Kind: service.ClusterIP, Action: service.Reject}
	web2 := web
	web2.Backends = []service.Backend{be("10.244.1.6", false)}
	lbCluster := lb // externalTrafficPolicy Cluster now: one entry
	lbCluster.ExternalPolicyLocal, lbCluster.LocalOriginBackends, lbCluster.Backends = false, nil, lb.LocalOriginBackends

	var byDelta, byFull ServiceIDs
	first := service.State{Frontends: []service.Frontend{web, dns, lb}}
	installed := map[uint32]datapath.Service{}
	for _, s := range Services(first, &byDelta) {
		installed[s.ID] = s
	}
	Services(first, &byFull)
	second := service.State{Frontends: []service.Frontend{web2, lbCluster}}
	upsert, remove := ServicesDelta(service.Delta{Removed: []service.Frontend{web, dns, lb}, Added: []service.Frontend{web2, lbCluster}}, &byDelta)
	if len(upsert) != 2 || len(remove) != 2 {
		t.Fatalf("want web and the LoadBalancer's internal entry written, dns and its external entry removed: upsert %+v, remove %v", upsert, remove)
	}
	for _, id := range remove {
		delete(installed, id)
	}
	for _, s := range upsert {
		installed[s.ID] = s
	}
	want := Services(second, &byFull)
	if len(installed) != len(want) {
		t.Fatalf("after the delta %+v, want %+v", installed, want)
	}
	for _, s := range want {
		if got, ok := installed[s.ID]; !ok || !reflect.DeepEqual(got, s) {
			t.Fatalf("service %d after the delta %+v, want %+v", s.ID, got, s)
		}
	}
	if !reflect.DeepEqual(byDelta.ids, byFull.ids) {
		t.Fatalf("ids after the delta %v, after the full conversion %v", byDelta.ids, byFull.ids)
	}
}
