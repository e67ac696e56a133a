package observe

import (
	"testing"

	flowpb "github.com/kestrelnet/kestrel/agent/hubbleapi/flow"
	"github.com/kestrelnet/kestrel/datapath"
)

// Every reason the datapath can report is either mapped to Cilium's enum or
// listed as ours alone, so a reason added in C cannot reach Hubble readers
// unnoticed.
func TestEveryDropReasonIsMappedOrKestrelOnly(t *testing.T) {
	reasons, err := datapath.DropReasons()
	if err != nil {
		t.Fatal(err)
	}
	if len(reasons) < 20 {
		t.Fatalf("only %d drop reasons read from the datapath's BTF", len(reasons))
	}
	for name, r := range reasons {
		if name == "NONE" {
			continue
		}
		c, mapped := CiliumDropReasonOf(r)
		_, only := kestrelOnlyDropReasons[name]
		switch {
		case mapped && only:
			t.Errorf("%s is both mapped (to %s) and listed as Kestrel-only", name, c.Name)
		case !mapped && !only:
			t.Errorf("%s has no Cilium counterpart and is not listed as Kestrel-only", name)
		case mapped && (c.Number < 130 || c.Name == "" || c.Text == ""):
			t.Errorf("%s maps to %+v, outside Cilium's drop reasons (130 and up)", name, c)
		}
	}
	for name := range ciliumDropReasons {
		if _, ok := reasons[name]; !ok {
			t.Errorf("the table maps %s, which the datapath does not have", name)
		}
	}
	for name := range kestrelOnlyDropReasons {
		if _, ok := reasons[name]; !ok {
			t.Errorf("%s is listed as Kestrel-only but the datapath does not have it", name)
		}
	}
}

// The table's names and numbers are Cilium's: each is a value of the
// generated flow.DropReason enum under that name.
func TestCiliumDropReasonsAreInTheEnum(t *testing.T) {
	for ours, c := range ciliumDropReasons {
		n, ok := flowpb.DropReason_value[c.Name]
		if !ok {
			t.Errorf("%s maps to %s, which Cilium's flow.DropReason does not have", ours, c.Name)
			continue
		}
		if n != c.Number {
			t.Errorf("%s maps to %s=%d, but Cilium numbers it %d", ours, c.Name, c.Number, n)
		}
	}
}
