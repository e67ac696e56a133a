package identity

import (
	"sort"
	"strings"
)

// Label sources, as in Cilium: the part before the first ':' of a label string.
const (
	SourceK8s      = "k8s"
	SourceReserved = "reserved"
	SourceCIDR     = "cidr"
	SourceFQDN     = "fqdn" // fqdn:<selector> on the addresses a toFQDNs selector selects
	SourceAny      = "any"
)

// Derived pod label keys that policies select on.
const (
	LabelNamespace       = "io.kubernetes.pod.namespace"
	LabelServiceAccount  = "io.cilium.k8s.policy.serviceaccount"
	LabelCluster         = "io.cilium.k8s.policy.cluster"
	LabelNamespacePrefix = "io.cilium.k8s.namespace.labels."
)

// Label is one source-qualified label: Source:Key=Value.
type Label struct {
	Source string
	Key    string
	Value  string
}

func (l Label) String() string {
	if l.Value == "" && l.Source != SourceK8s {
		return l.Source + ":" + l.Key
	}
	return l.Source + ":" + l.Key + "=" + l.Value
}

// Labels is a set of labels kept sorted by their string form, so that equal
// sets have equal string forms.
type Labels []Label

// NewLabels sorts and deduplicates ls.
func NewLabels(ls ...Label) Labels {
	out := append(Labels(nil), ls...)
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	dedup := out[:0]
	for i, l := range out {
		if i > 0 && l == out[i-1] {
			continue
		}
		dedup = append(dedup, l)
	}
	return dedup
}

func (ls Labels) String() string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.String()
	}
	return strings.Join(parts, ",")
}

// Get returns the value of key for the given source; source "any" or ""
// matches every source.
func (ls Labels) Get(source, key string) (string, bool) {
	for _, l := range ls {
		if l.Key == key && (source == "" || source == SourceAny || source == l.Source) {
			return l.Value, true
		}
	}
	return "", false
}

// PodInfo is what a pod's identity is derived from.
type PodInfo struct {
	Namespace       string
	Labels          map[string]string
	ServiceAccount  string
	NamespaceLabels map[string]string
	Cluster         string
}

// PodLabels returns the identity labels of a pod: its own labels plus the
// derived namespace, service account, cluster and namespace-label labels.
func PodLabels(p PodInfo) Labels {
	sa := p.ServiceAccount
	if sa == "" {
		sa = "default"
	}
	cluster := p.Cluster
	if cluster == "" {
		cluster = "default"
	}
	ls := []Label{
		{SourceK8s, LabelNamespace, p.Namespace},
		{SourceK8s, LabelServiceAccount, sa},
		{SourceK8s, LabelCluster, cluster},
	}
	for k, v := range p.Labels {
		ls = append(ls, Label{SourceK8s, k, v})
	}
	for k, v := range p.NamespaceLabels {
		ls = append(ls, Label{SourceK8s, LabelNamespacePrefix + k, v})
	}
	return NewLabels(ls...)
}

// ReservedLabels returns the labels of a reserved identity (reserved:<name>).
func ReservedLabels(id NumericIdentity) Labels {
	name := ReservedName(id)
	if name == "" {
		return nil
	}
	return Labels{{Source: SourceReserved, Key: name}}
}
