package identity

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNumberingSurvivesSaveAndLoad(t *testing.T) {
	a := NewAllocator()
	ids := a.AllocateAll([]Labels{podSet("x"), podSet("y")})
	cidr := a.AllocateCIDR(netip.MustParsePrefix("192.0.2.0/24"))
	path := filepath.Join(t.TempDir(), "identities.json")
	if err := SaveNumbering(path, a.Numbering()); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadNumbering(path)
	if err != nil {
		t.Fatal(err)
	}
	s := loaded.Successor()
	got := s.AllocateAll([]Labels{podSet("new"), podSet("y"), podSet("x")})
	if got[2] != ids[0] || got[1] != ids[1] || got[0] != ids[1]+1 {
		t.Fatalf("after load: %v, want [%d %d %d]", got, ids[1]+1, ids[1], ids[0])
	}
	if id := s.AllocateCIDR(netip.MustParsePrefix("192.0.2.0/24")); id != cidr {
		t.Fatalf("prefix after load = %d, want %d", id, cidr)
	}
}

func TestMissingNumberingIsNothingToKeep(t *testing.T) {
	a, err := LoadNumbering(filepath.Join(t.TempDir(), "absent.json"))
	if a != nil || err != nil {
		t.Fatalf("LoadNumbering of a missing file = %v, %v; want nil, nil", a, err)
	}
}

func TestDamagedNumberingIsRefusedWithTheReason(t *testing.T) {
	for name, body := range map[string]string{
		"not JSON":       `{"pods":`,
		"given twice":    `{"pods":{"k8s:a=1":300,"k8s:a=2":300},"cidrs":{},"nextPod":301,"nextLocal":16777217}`,
		"pod range":      `{"pods":{"k8s:a=1":12},"cidrs":{},"nextPod":301,"nextLocal":16777217}`,
		"bad prefix":     `{"pods":{},"cidrs":{"10.0.0.0/33":16777217},"nextPod":301,"nextLocal":16777218}`,
		"cursor outside": `{"pods":{},"cidrs":{},"nextPod":0,"nextLocal":16777217}`,
	} {
		path := filepath.Join(t.TempDir(), "identities.json")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		a, err := LoadNumbering(path)
		if err == nil || a != nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: LoadNumbering = %v, %v; want an error naming the file", name, a, err)
		}
	}
}
