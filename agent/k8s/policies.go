package k8s

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kestrelnet/kestrel/agent/policy"
)

// PolicyObject is one policy object from the API server: parsed, or rejected
// with the reason (Err names the object and the field).
type PolicyObject struct {
	Kind, Namespace, Name string
	UID                   types.UID
	ResourceVersion       string
	Parsed                policy.Object
	Err                   error
}

// Reporter is told once about each version of a policy that failed to
// parse, and of each that parsed but is not enforced as written
// (policy.Warnings).
type Reporter interface {
	PolicyRejected(PolicyObject)
	PolicyWarned(p PolicyObject, warnings []string)
}

// policyCache keeps parse results per object version, so a regeneration
// parses only what changed and a rejection is reported once.
type policyCache struct {
	log      *slog.Logger
	reporter Reporter
	mu       sync.Mutex
	byUID    map[types.UID]PolicyObject
}

func newPolicyCache(log *slog.Logger, r Reporter) *policyCache {
	return &policyCache{log: log, reporter: r, byUID: map[types.UID]PolicyObject{}}
}

// parseAll parses objs (NetworkPolicies, and unstructured CNPs, CCNPs and
// CiliumCIDRGroups, which policies reference), reusing
// earlier results for unchanged versions and forgetting objects now gone.
func (c *policyCache) parseAll(objs []any) []PolicyObject {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[types.UID]bool{}
	out := make([]PolicyObject, 0, len(objs))
	for _, obj := range objs {
		m, err := meta.Accessor(obj)
		if err != nil {
			continue
		}
		seen[m.GetUID()] = true
		if old, ok := c.byUID[m.GetUID()]; ok && old.ResourceVersion == m.GetResourceVersion() {
			out = append(out, old)
			continue
		}
		p := parseObject(obj)
		c.byUID[p.UID] = p
		if p.Err != nil {
			c.log.Warn("policy rejected; the other policies stay in force", "kind", p.Kind, "namespace", p.Namespace, "name", p.Name, "err", p.Err)
			if c.reporter != nil {
				c.reporter.PolicyRejected(p)
			}
		} else if ws := policy.Warnings(&p.Parsed); len(ws) > 0 {
			c.log.Warn("policy not enforced as written", "kind", p.Kind, "namespace", p.Namespace, "name", p.Name, "warnings", ws)
			if c.reporter != nil {
				c.reporter.PolicyWarned(p, ws)
			}
		}
		out = append(out, p)
	}
	for uid := range c.byUID {
		if !seen[uid] {
			delete(c.byUID, uid)
		}
	}
	return out
}

// parseObject turns an API object into JSON and parses it strictly, as the
// CLI parses a file, so that the agent accepts exactly what `kestrel policy`
// accepts. The source names the object: "<kind>/<namespace>/<name>".
func parseObject(obj any) PolicyObject {
	var js []byte
	var err error
	var p PolicyObject
	switch o := obj.(type) {
	case *networkingv1.NetworkPolicy:
		p = PolicyObject{Kind: policy.KindNetworkPolicy, Namespace: o.Namespace, Name: o.Name, UID: o.UID, ResourceVersion: o.ResourceVersion}
		c := o.DeepCopy()
		// Informer objects lack their type; the parser needs it.
		c.APIVersion, c.Kind = "networking.k8s.io/v1", policy.KindNetworkPolicy
		c.ManagedFields = nil
		js, err = json.Marshal(c)
	case *unstructured.Unstructured:
		p = PolicyObject{Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName(), UID: o.GetUID(), ResourceVersion: o.GetResourceVersion()}
		c := o.DeepCopy()
		c.SetManagedFields(nil)
		js, err = c.MarshalJSON()
	default:
		return PolicyObject{Err: fmt.Errorf("unexpected object %T", obj)}
	}
	if err != nil {
		p.Err = fmt.Errorf("%s: encode: %w", p.source(), err)
		return p
	}
	p.Parsed, p.Err = policy.ParseJSONObject(js, p.source())
	if p.Err == nil && !p.Parsed.IsPolicy() {
		p.Err = fmt.Errorf("%s: not a policy kind", p.source())
	}
	return p
}

func (p PolicyObject) source() string {
	if p.Namespace == "" {
		return p.Kind + "/" + p.Name
	}
	return p.Kind + "/" + p.Namespace + "/" + p.Name
}
