package policy

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kestrelnet/kestrel/agent/identity"
)

// matchIdentity matches a Cilium endpoint selector against identity labels.
// A key without a source prefix (or with any:) matches a label of any source.
func matchIdentity(s *Selector, ls identity.Labels) bool {
	for k, v := range s.MatchLabels {
		src, name, err := splitSourceKey(k)
		if err != nil {
			return false
		}
		got, ok := ls.Get(src, name)
		if !ok || got != v {
			return false
		}
	}
	for _, e := range s.MatchExpressions {
		src, name, err := splitSourceKey(e.Key)
		if err != nil {
			return false
		}
		got, ok := ls.Get(src, name)
		var m bool
		switch e.Operator {
		case metav1.LabelSelectorOpIn:
			m = ok && slices.Contains(e.Values, got)
		case metav1.LabelSelectorOpNotIn:
			m = !ok || !slices.Contains(e.Values, got)
		case metav1.LabelSelectorOpExists:
			m = ok
		case metav1.LabelSelectorOpDoesNotExist:
			m = !ok
		}
		if !m {
			return false
		}
	}
	return true
}

func selectorKeys(s *Selector) []string {
	keys := make([]string, 0, len(s.MatchLabels)+len(s.MatchExpressions))
	for k := range s.MatchLabels {
		keys = append(keys, k)
	}
	for _, e := range s.MatchExpressions {
		keys = append(keys, e.Key)
	}
	return keys
}

// namespaceScoped reports whether a selector in a namespaced CNP is limited to
// the policy's namespace: it is unless it names the namespace label itself or
// selects reserved identities.
func namespaceScoped(s *Selector) bool {
	for _, k := range selectorKeys(s) {
		src, name, _ := splitSourceKey(k)
		if name == identity.LabelNamespace || src == identity.SourceReserved {
			return false
		}
	}
	return true
}

func isEmptySelector(s *Selector) bool {
	return len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0
}
