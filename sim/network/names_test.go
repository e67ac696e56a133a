package network

import (
	"strings"
	"testing"
)

func TestClusterNamesThatOverflowAnInterfaceNameAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"kestrel", true},
		{"abcdefghij", true},
		{"abcdefghijk", false},
		{"", false},
		{"Upper", false},
		{"-dash", false},
	} {
		err := ValidateName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && tc.name == "abcdefghijk" && !strings.Contains(err.Error(), "too long") {
			t.Errorf("error does not say the name is too long: %v", err)
		}
	}
}

func TestAddressesFollowTheContract(t *testing.T) {
	if got := NodeIP(1).String(); got != "172.30.0.11" {
		t.Errorf("NodeIP(1) = %s", got)
	}
	if got := PodCIDR(3).String(); got != "10.244.2.0/24" {
		t.Errorf("PodCIDR(3) = %s", got)
	}
	if got := NodeIP6(1).String(); got != "fd00:172:30::11" {
		t.Errorf("NodeIP6(1) = %s", got)
	}
	if got := PodCIDR6(1).String(); got != "fd00:10:244::/64" {
		t.Errorf("PodCIDR6(1) = %s", got)
	}
	if got := PodCIDR6(12).String(); got != "fd00:10:244:b::/64" {
		t.Errorf("PodCIDR6(12) = %s, want the engine's fd00:10:244:<i-1 in hex>::/64", got)
	}
	if got := PodGateway(1).String(); got != "10.244.0.1" {
		t.Errorf("PodGateway(1) = %s", got)
	}
	if got := PodNetns("k", "0123456789abcdef"); got != "ksim-k-pod-0123456789ab" {
		t.Errorf("PodNetns = %s", got)
	}
}

func TestAClusterOnlyClaimsItsOwnNamespaces(t *testing.T) {
	for _, tc := range []struct {
		ns   string
		want bool
	}{
		{"ksim-a-ul", true},
		{"ksim-a-outside", true},
		{"ksim-a-b-outside", false},
		{"ksim-a-node-1", true},
		{"ksim-a-pod-0123456789ab", true},
		{"ksim-a-b-ul", false},
		{"ksim-a-node-ul", false},
		{"ksim-a-pod-ul", false},
		{"ksim-ab-ul", false},
		{"other", false},
	} {
		if got := ownedNetns("a", tc.ns); got != tc.want {
			t.Errorf("ownedNetns(a, %s) = %v, want %v", tc.ns, got, tc.want)
		}
	}
}
