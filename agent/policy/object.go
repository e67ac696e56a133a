package policy

import (
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
)

// Kinds of policy objects.
const (
	KindNetworkPolicy = "NetworkPolicy"
	KindCNP           = "CiliumNetworkPolicy"
	KindCCNP          = "CiliumClusterwideNetworkPolicy"
	// KindCiliumRules is the older JSON-array format: bare rules, not namespaced,
	// as imported with `cilium policy import`.
	KindCiliumRules = "CiliumRules"
)

// Source says where an object was read from.
type Source struct {
	File string
	Doc  int // 0-based document (YAML) or array element (JSON) index
	Line int // 1-based line where the document starts; 0 if unknown
}

func (s Source) String() string {
	if s.Line > 0 {
		return fmt.Sprintf("%s:%d", s.File, s.Line)
	}
	return fmt.Sprintf("%s[%d]", s.File, s.Doc)
}

// Object is one parsed object. Exactly one of NetworkPolicy and Cilium is set
// for policies; other kinds (Namespace, Pod, Deployment, ...) are Skipped and
// carry their JSON in Raw so tools can use them as a cluster description.
type Object struct {
	Kind          string
	Namespace     string
	Name          string
	Source        Source
	NetworkPolicy *networkingv1.NetworkPolicy
	Cilium        *CiliumNetworkPolicy
	CIDRGroup     *CiliumCIDRGroup // not a policy itself: what cidrGroupRef/Selector name
	Skipped       bool
	Raw           []byte
}

// Origin names the object in map entries.
func (o *Object) Origin() Origin {
	return Origin{Kind: o.Kind, Namespace: o.Namespace, Name: o.Name}
}

// IsPolicy reports whether Resolve uses o: a policy, or a CiliumCIDRGroup
// that policies name.
func (o *Object) IsPolicy() bool { return !o.Skipped }

func (o *Object) String() string {
	if o.Namespace != "" {
		return o.Kind + "/" + o.Namespace + "/" + o.Name
	}
	return o.Kind + "/" + o.Name
}
