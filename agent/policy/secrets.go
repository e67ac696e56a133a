package policy

import (
	"fmt"
	"sort"
)

// Secrets are the Kubernetes Secrets policies may name, by
// "namespace/name": each Secret's data (stringData merged in, as the API
// server stores it).
type Secrets map[string]map[string][]byte

// SecretUse is one place a policy takes a value from a Secret.
type SecretUse struct {
	// Path is the field inside the object, as parse errors name it:
	// spec.egress[0].toPorts[0].rules.http[0].headerMatches[0].secret.
	Path string
	// Ref is the Secret, its namespace defaulted to the policy's (a
	// clusterwide policy's to "default").
	Ref SecretRef
	// Fallback says the header match has its own value, which Cilium uses
	// when the Secret cannot be read.
	Fallback bool
}

// secretNamespace is where a policy of namespace ns looks for ref.
func secretNamespace(ref SecretRef, ns string) string {
	switch {
	case ref.Namespace != "":
		return ref.Namespace
	case ns != "":
		return ns
	}
	return "default"
}

// SecretUses lists every headerMatches Secret of a Cilium policy, in field
// order.
func SecretUses(o *Object) []SecretUse {
	if o.Cilium == nil {
		return nil
	}
	var out []SecretUse
	first := 0 // Rules() is spec, then specs
	if o.Cilium.Spec != nil {
		first = 1
	}
	ports := func(path string, ps []PortRule) {
		for k, p := range ps {
			if p.Rules == nil {
				continue
			}
			for i, h := range p.Rules.HTTP {
				for j, m := range h.HeaderMatches {
					if m.Secret == nil {
						continue
					}
					ref := SecretRef{Namespace: secretNamespace(*m.Secret, o.Namespace), Name: m.Secret.Name}
					out = append(out, SecretUse{
						Path:     fmt.Sprintf("%s.toPorts[%d].rules.http[%d].headerMatches[%d].secret", path, k, i, j),
						Ref:      ref,
						Fallback: m.Value != "",
					})
				}
			}
		}
	}
	for i, r := range o.Cilium.Rules() {
		rule := "spec"
		if i >= first {
			rule = fmt.Sprintf("specs[%d]", i-first)
		}
		for j, in := range r.Ingress {
			ports(fmt.Sprintf("%s.ingress[%d]", rule, j), in.ToPorts)
		}
		for j, eg := range r.Egress {
			ports(fmt.Sprintf("%s.egress[%d]", rule, j), eg.ToPorts)
		}
	}
	return out
}

// secretValue is the value a header match takes from a Secret: its only
// data entry (Cilium's rule: the Secret must hold exactly one).
func (s Secrets) secretValue(ref SecretRef) (string, error) {
	data, ok := s[ref.Namespace+"/"+ref.Name]
	if !ok {
		return "", fmt.Errorf("Secret %s/%s does not exist", ref.Namespace, ref.Name)
	}
	if len(data) != 1 {
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return "", fmt.Errorf("Secret %s/%s must hold exactly one data entry, it has %d %v", ref.Namespace, ref.Name, len(data), keys)
	}
	for _, v := range data {
		return string(v), nil
	}
	return "", nil
}

// CheckSecrets refuses policies whose header matches need a Secret that
// cannot be read (missing, or not exactly one entry) and have no value of
// their own to fall back on: each error names the object's source and the
// field. Callers apply nothing of a refused set. (A Secret that goes away
// after its policy was accepted is no error: the match fails closed, see
// resolveHeaderSecrets.)
func CheckSecrets(objs []Object, secrets Secrets) Errors {
	var out Errors
	for i := range objs {
		o := &objs[i]
		for _, u := range SecretUses(o) {
			if u.Fallback {
				continue
			}
			if _, err := secrets.secretValue(u.Ref); err != nil {
				out = append(out, &Error{File: o.Source.File, Line: o.Source.Line, Path: u.Path,
					Msg: fmt.Sprintf("%s: %v", o.Origin(), err)})
			}
		}
	}
	return out
}

// resolveHeaderSecrets is the HTTP rules of a policy of namespace ns with
// every Secret-backed header match given its value: the Secret's, else the
// match's own value (Cilium's fallback), else the match is marked
// unresolved and the proxy never lets its rule match (fail closed).
func resolveHeaderSecrets(rs []HTTPRule, ns string, secrets Secrets) []HTTPRule {
	need := false
	for _, r := range rs {
		for _, h := range r.HeaderMatches {
			need = need || h.Secret != nil
		}
	}
	if !need {
		return rs
	}
	out := make([]HTTPRule, len(rs))
	for i, r := range rs {
		out[i] = r
		out[i].HeaderMatches = make([]HeaderMatch, len(r.HeaderMatches))
		for j, h := range r.HeaderMatches {
			if h.Secret != nil {
				ref := SecretRef{Namespace: secretNamespace(*h.Secret, ns), Name: h.Secret.Name}
				v, err := secrets.secretValue(ref)
				switch {
				case err == nil && v != "":
					h.Value = v
				case h.Value != "":
					// Cilium's fallback: the match's own value.
				case err == nil:
					h.Unresolved = fmt.Sprintf("Secret %s/%s is empty", ref.Namespace, ref.Name)
				default:
					h.Unresolved = err.Error()
				}
				h.Secret = nil
			}
			out[i].HeaderMatches[j] = h
		}
	}
	return out
}
