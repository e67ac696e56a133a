package identity

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
)

// Numbering is what an allocator has handed out, in a form that can be
// saved: an agent writes it after each regeneration and reads it back when
// it restarts, so a restarted agent keeps the numbers that are in its pinned
// maps and in its peers' conntrack entries instead of renumbering.
type Numbering struct {
	Pods      map[string]NumericIdentity `json:"pods"`            // label set (Labels.String) -> id
	CIDRs     map[string]NumericIdentity `json:"cidrs"`           // masked prefix -> node-local id
	Addrs     map[string]NumericIdentity `json:"addrs,omitempty"` // pod address label set -> node-local id
	NextPod   NumericIdentity            `json:"nextPod"`
	NextLocal NumericIdentity            `json:"nextLocal"`
}

// Numbering returns what a has handed out.
func (a *Allocator) Numbering() Numbering {
	n := Numbering{Pods: maps.Clone(a.byKey), CIDRs: map[string]NumericIdentity{}, Addrs: maps.Clone(a.addrs), NextPod: a.nextPod, NextLocal: a.nextLocal}
	for p, id := range a.cidrs {
		n.CIDRs[p.String()] = id
	}
	return n
}

// Allocator returns an allocator holding n's numbers, to take the
// Successor of. It checks that the numbers lie in their ranges and that no
// number is given twice, so a damaged file cannot make two sets collide.
func (n Numbering) Allocator() (*Allocator, error) {
	a := NewAllocator()
	a.nextPod, a.nextLocal = n.NextPod, n.NextLocal
	if a.nextPod < MinClusterIdentity || a.nextPod > maxPodIdentity {
		return nil, fmt.Errorf("nextPod %d is outside %d..%d", a.nextPod, MinClusterIdentity, maxPodIdentity)
	}
	if a.nextLocal <= LocalIdentityFlag || a.nextLocal > maxLocalIdentity {
		return nil, fmt.Errorf("nextLocal %d is outside %d..%d", a.nextLocal, LocalIdentityFlag|1, maxLocalIdentity)
	}
	for key, id := range n.Pods {
		if id < MinClusterIdentity || id > maxPodIdentity {
			return nil, fmt.Errorf("pods[%q]: %d is not a pod identity", key, id)
		}
		if _, dup := a.byID[id]; dup {
			return nil, fmt.Errorf("pods[%q]: %d is given twice", key, id)
		}
		a.byKey[key] = id
		a.byID[id] = nil // only the number is needed of a predecessor
	}
	for s, id := range n.CIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("cidrs[%q]: %w", s, err)
		}
		if id <= LocalIdentityFlag || id > maxLocalIdentity {
			return nil, fmt.Errorf("cidrs[%q]: %d is not a node-local identity", s, id)
		}
		if _, dup := a.byID[id]; dup {
			return nil, fmt.Errorf("cidrs[%q]: %d is given twice", s, id)
		}
		a.cidrs[p.Masked()] = id
		a.byID[id] = nil
	}
	for key, id := range n.Addrs {
		if id <= LocalIdentityFlag || id > maxLocalIdentity {
			return nil, fmt.Errorf("addrs[%q]: %d is not a node-local identity", key, id)
		}
		if _, dup := a.byID[id]; dup {
			return nil, fmt.Errorf("addrs[%q]: %d is given twice", key, id)
		}
		a.addrs[key] = id
		a.byID[id] = nil
	}
	return a, nil
}

// SaveNumbering writes n to path whole and renames it into place, so a crash
// leaves either the old numbering or the new one.
func SaveNumbering(path string, n Numbering) error {
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// LoadNumbering reads a numbering SaveNumbering wrote. A missing file is
// (nil, nil): there is nothing to keep.
func LoadNumbering(path string) (*Allocator, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var n Numbering
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	a, err := n.Allocator()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}
