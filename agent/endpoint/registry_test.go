package endpoint

import (
	"net/netip"
	"path/filepath"
	"testing"
)

func TestRegistryKeepsIDsAndSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "endpoints.json")
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := r.Put(Record{ContainerID: "a", Namespace: "ns", Name: "p", IPs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := r.Put(Record{ContainerID: "b", Namespace: "ns", Name: "q"})
	again, _ := r.Put(Record{ContainerID: "a", Namespace: "ns", Name: "p", HostIfIndex: 7, IPs: a.IPs})
	if a.ID != 1 || b.ID != 2 || again.ID != 1 || again.Seq <= b.Seq {
		t.Fatalf("ids/seqs: a=%+v b=%+v again=%+v", a, b, again)
	}
	if err := r.Delete("b"); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete("b"); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	r2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	got := r2.List()
	if len(got) != 1 || got[0].ID != 1 || got[0].HostIfIndex != 7 || got[0].IPs[0] != netip.MustParseAddr("10.0.0.1") {
		t.Fatalf("reopened registry: %+v", got)
	}
	c, _ := r2.Put(Record{ContainerID: "c"})
	if c.ID != 3 {
		t.Fatalf("ids must not be reused after reopening: got %d", c.ID)
	}
}
