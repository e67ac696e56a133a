package k8s

import "k8s.io/apimachinery/pkg/runtime/schema"

// The Cilium policy resources, watched through the dynamic client because
// Kestrel does not vendor Cilium's typed clients.
var (
	CNPResource  = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumnetworkpolicies"}
	CCNPResource = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumclusterwidenetworkpolicies"}
)

// ListKinds names the list kinds of the Cilium resources, which a fake
// dynamic client needs to be told.
var ListKinds = map[schema.GroupVersionResource]string{
	CNPResource:  "CiliumNetworkPolicyList",
	CCNPResource: "CiliumClusterwideNetworkPolicyList",
}
