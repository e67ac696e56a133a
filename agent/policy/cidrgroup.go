package policy

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KindCIDRGroup is Cilium's CiliumCIDRGroup: a named, labelled list of CIDRs
// that fromCIDRSet/toCIDRSet entries reference by name (cidrGroupRef) or by
// label (cidrGroupSelector). Cluster-scoped. Upstream serves it as
// cilium.io/v2alpha1 and, since Cilium 1.18, cilium.io/v2 with the same
// schema; both are read.
const KindCIDRGroup = "CiliumCIDRGroup"

var cidrGroupVersions = map[string]bool{"cilium.io/v2alpha1": true, "cilium.io/v2": true}

// CiliumCIDRGroup is the object; spec.externalCIDRs is required (it may be
// empty: a group with no CIDRs selects nothing).
type CiliumCIDRGroup struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            *CIDRGroupSpec    `json:"spec"`
	Status          json.RawMessage   `json:"status,omitempty"`
}

// CIDRGroupSpec lists the group's prefixes.
type CIDRGroupSpec struct {
	ExternalCIDRs []string `json:"externalCIDRs"`
}

// validateCIDRGroup checks a decoded CiliumCIDRGroup document.
func validateCIDRGroup(c *checker, g *CiliumCIDRGroup) {
	if g.Metadata.Namespace != "" {
		c.fail("metadata.namespace", "CiliumCIDRGroup is cluster-scoped, got namespace %q", g.Metadata.Namespace)
	}
	if g.Spec == nil {
		c.fail("spec", "required")
		return
	}
	if g.Spec.ExternalCIDRs == nil {
		c.fail("spec.externalCIDRs", "required")
	}
	for i, s := range g.Spec.ExternalCIDRs {
		if _, err := netip.ParsePrefix(s); err != nil {
			c.fail(fmt.Sprintf("spec.externalCIDRs[%d]", i), "invalid CIDR %q (want address/length)", s)
		}
	}
}

// validateCIDRGroupRule checks the group part of one CIDRSet entry: exactly
// one of cidr, cidrGroupRef and cidrGroupSelector, as in Cilium's schema. It
// reports whether that holds.
func validateCIDRGroupRule(c *checker, s CIDRRule, path string) bool {
	n := 0
	for _, set := range []bool{s.Cidr != "", s.CIDRGroupRef != "", s.CIDRGroupSelector != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		c.fail(path, "exactly one of cidr, cidrGroupRef and cidrGroupSelector is required")
	}
	validateSelector(c, s.CIDRGroupSelector, path+".cidrGroupSelector")
	if s.Cidr == "" {
		for i, e := range s.Except {
			if _, err := parseCIDR(e); err != nil {
				c.failErr(fmt.Sprintf("%s.except[%d]", path, i), err)
			}
		}
	}
	return n == 1
}

// cidrGroups are the CiliumCIDRGroups a resolution sees, by name.
type cidrGroups map[string]*CiliumCIDRGroup

func collectCIDRGroups(objs []Object) cidrGroups {
	out := cidrGroups{}
	for i := range objs {
		if g := objs[i].CIDRGroup; g != nil {
			out[objs[i].Name] = g
		}
	}
	return out
}

// sets expands CIDR fields into prefixes minus exceptions. A group reference
// stands for each of the group's CIDRs, minus the entry's exceptions that lie
// inside it; a missing or empty group stands for nothing (as in Cilium, it
// selects no peer). Invalid entries were refused at parse time.
func (gs cidrGroups) sets(cidrs []string, rules []CIDRRule) []cidrSet {
	var out []cidrSet
	for _, s := range cidrs {
		if p, err := parseCIDR(s); err == nil {
			out = append(out, cidrSet{CIDR: p})
		}
	}
	for _, r := range rules {
		if r.Cidr != "" {
			if cs, err := parseCIDRSet(r.Cidr, r.Except); err == nil {
				out = append(out, cs)
			}
			continue
		}
		for _, name := range gs.selected(r) {
			for _, c := range gs[name].Spec.ExternalCIDRs {
				p, err := netip.ParsePrefix(c)
				if err != nil {
					continue
				}
				cs := cidrSet{CIDR: p.Masked()}
				for _, e := range r.Except {
					if ep, err := parseCIDR(e); err == nil && ep.Addr().Is4() == p.Addr().Is4() && ep.Bits() >= p.Bits() && p.Contains(ep.Addr()) {
						cs.Except = append(cs.Except, ep)
					}
				}
				out = append(out, cs)
			}
		}
	}
	return out
}

// selected names the groups a CIDRSet entry refers to, sorted.
func (gs cidrGroups) selected(r CIDRRule) []string {
	var out []string
	switch {
	case r.CIDRGroupRef != "":
		if _, ok := gs[r.CIDRGroupRef]; ok {
			out = append(out, r.CIDRGroupRef)
		}
	case r.CIDRGroupSelector != nil:
		for name, g := range gs {
			if selectorMatches(r.CIDRGroupSelector, g.Metadata.Labels) {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out
}
