package daemon

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/agent/identity"
)

// A dual-stack pod registers both addresses: the endpoint is installed under
// both with its MAC and host device, and the ipcache maps both (and a remote
// dual-stack pod's and every node's IPv6 address) to the right identities.
func TestDualStackEndpointAndIPCache(t *testing.T) {
	c := newCluster(t, pod("a", "node-1", "", "a"), pod("b", "node-2", "10.244.1.5,fd00:10:244:1::5", "b"))
	resp := c.put("c1", "a", "10.244.0.5", "fd00:10:244::5")
	ep, _, ok := c.dp.endpoint(resp.ID)
	if !ok {
		t.Fatalf("endpoint %d not installed", resp.ID)
	}
	if want := []netip.Addr{netip.MustParseAddr("10.244.0.5"), netip.MustParseAddr("fd00:10:244::5")}; !slices.Equal(ep.IPs, want) {
		t.Errorf("endpoint IPs = %v, want %v", ep.IPs, want)
	}
	if ep.MAC.String() != testMAC || ep.IfIndex != 42 {
		t.Errorf("endpoint MAC %s on ifindex %d, want %s on 42", ep.MAC, ep.IfIndex, testMAC)
	}
	c.dp.mu.Lock()
	ipc := c.dp.ipcache
	c.dp.mu.Unlock()
	for p, want := range map[string]uint32{
		"10.244.0.5/32": resp.Identity, "fd00:10:244::5/128": resp.Identity,
		"172.30.0.11/32": uint32(identity.Host), "fd00:172:30::11/128": uint32(identity.Host),
		"172.30.0.12/32": uint32(identity.RemoteNode), "fd00:172:30::12/128": uint32(identity.RemoteNode),
	} {
		if got := ipc[netip.MustParsePrefix(p)]; got != want {
			t.Errorf("ipcache %s = %d, want %d", p, got, want)
		}
	}
	b4, b6 := ipc[netip.MustParsePrefix("10.244.1.5/32")], ipc[netip.MustParsePrefix("fd00:10:244:1::5/128")]
	if b4 < uint32(identity.MinClusterIdentity) || b6 != b4 {
		t.Errorf("remote pod b: ipcache IPv4 %d, IPv6 %d; want one pod identity for both", b4, b6)
	}
	st := c.d.Status(context.Background())
	if len(st.Endpoints) != 1 || strings.Join(st.Endpoints[0].IPs, ",") != "10.244.0.5,fd00:10:244::5" {
		t.Errorf("status endpoints = %+v", st.Endpoints)
	}
}

func TestEndpointRequestsAreValidated(t *testing.T) {
	c := newCluster(t, pod("a", "node-1", "", "a"))
	good := api.EndpointRequest{ContainerID: "c1", PodNamespace: "default", PodName: "a", HostIfIndex: 42, MAC: testMAC, IPs: []string{"10.244.0.5"}}
	cases := []struct {
		name string
		edit func(r *api.EndpointRequest)
		want string
	}{
		{"a missing MAC", func(r *api.EndpointRequest) { r.MAC = "" }, `mac "" is not an Ethernet address`},
		{"a MAC that is not Ethernet's", func(r *api.EndpointRequest) { r.MAC = "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01" }, "is not an Ethernet address"},
		{"two addresses of one family", func(r *api.EndpointRequest) { r.IPs = []string{"10.244.0.5", "10.244.0.6"} }, "ips[1]: 10.244.0.6 is a second address of the family of 10.244.0.5"},
		{"an address that is not one", func(r *api.EndpointRequest) { r.IPs = []string{"10.244.0.5", "fd00::zz"} }, `ips[1]: "fd00::zz" is not an IP address`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := good
			tc.edit(&r)
			_, err := c.d.PutEndpoint(context.Background(), r)
			if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
	if len(c.d.registry.List()) != 0 {
		t.Errorf("a refused request was recorded: %+v", c.d.registry.List())
	}
}
