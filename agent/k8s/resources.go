package k8s

import "k8s.io/apimachinery/pkg/runtime/schema"

// The Cilium policy resources, watched through the dynamic client because
// Kestrel does not vendor Cilium's typed clients.
var (
	CNPResource  = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumnetworkpolicies"}
	CCNPResource = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumclusterwidenetworkpolicies"}
	// CIDRGroupResource is CiliumCIDRGroup at cilium.io/v2, the version
	// Cilium stores since 1.18 (v2alpha1, with the same schema, is served
	// too). Policies name groups in fromCIDRSet/toCIDRSet, so a group change
	// regenerates them like a policy change.
	CIDRGroupResource = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumcidrgroups"}
)

// ListKinds names the list kinds of the Cilium resources, which a fake
// dynamic client needs to be told.
var ListKinds = map[schema.GroupVersionResource]string{
	CNPResource:       "CiliumNetworkPolicyList",
	CCNPResource:      "CiliumClusterwideNetworkPolicyList",
	CIDRGroupResource: "CiliumCIDRGroupList",
}
