package datapathstate

import (
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kestrelnet/kestrel/agent/service"
)

func TestOnlyClusterIPFrontendsAreTranslatedAndIDsStayPut(t *testing.T) {
	web := service.Frontend{Addr: netip.MustParseAddr("10.96.0.10"), Port: 80, Protocol: corev1.ProtocolTCP, Kind: service.ClusterIP,
		Action: service.Forward, Backends: []service.Backend{{Addr: netip.MustParseAddr("10.244.0.5"), Port: 8080}}, AffinityTimeout: time.Minute}
	empty := service.Frontend{Addr: netip.MustParseAddr("10.96.0.11"), Port: 53, Protocol: corev1.ProtocolUDP, Kind: service.ClusterIP, Action: service.Reject}
	nodePort := service.Frontend{Addr: netip.MustParseAddr("172.30.0.11"), Port: 30080, Protocol: corev1.ProtocolTCP, Kind: service.NodePort,
		Action: service.Forward, Backends: web.Backends}
	var ids ServiceIDs
	got := Services(service.State{Frontends: []service.Frontend{web, empty, nodePort}}, &ids)
	if len(got) != 2 || got[0].Frontend.String() != "10.96.0.10:80" || got[0].AffinityTimeout != time.Minute || len(got[0].Backends) != 1 ||
		got[1].Protocol != 17 || !got[1].Reject || len(got[1].Backends) != 0 {
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
