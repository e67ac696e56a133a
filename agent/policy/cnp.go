package policy

import (
	"encoding/json"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The cilium.io/v2 CiliumNetworkPolicy schema, defined here so Kestrel reads
// users' YAML unchanged without depending on Cilium. Fields that are parsed but
// not enforced yet (toFQDNs, toServices, toGroups, L7 rules, TLS) are kept so
// later stages and `explain` can use them.

// CiliumNetworkPolicy is a CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy.
type CiliumNetworkPolicy struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            *Rule             `json:"spec,omitempty"`
	Specs           []Rule            `json:"specs,omitempty"`
	Status          json.RawMessage   `json:"status,omitempty"`
}

// Rules returns spec followed by specs.
func (p *CiliumNetworkPolicy) Rules() []Rule {
	var out []Rule
	if p.Spec != nil {
		out = append(out, *p.Spec)
	}
	return append(out, p.Specs...)
}

// Selector is a Cilium endpoint selector: a label selector whose keys may carry
// a source prefix (k8s:, any:, reserved:, cidr:).
type Selector = metav1.LabelSelector

// Rule is one CNP rule (spec, an element of specs, or an element of the older
// JSON-array format).
type Rule struct {
	EndpointSelector  *Selector         `json:"endpointSelector,omitempty"`
	NodeSelector      *Selector         `json:"nodeSelector,omitempty"`
	Ingress           []IngressRule     `json:"ingress,omitempty"`
	IngressDeny       []IngressDenyRule `json:"ingressDeny,omitempty"`
	Egress            []EgressRule      `json:"egress,omitempty"`
	EgressDeny        []EgressDenyRule  `json:"egressDeny,omitempty"`
	Labels            []RuleLabel       `json:"labels,omitempty"`
	EnableDefaultDeny *DefaultDeny      `json:"enableDefaultDeny,omitempty"`
	Description       string            `json:"description,omitempty"`
	Log               *LogConfig        `json:"log,omitempty"`
}

// RuleLabel names a rule (older format and spec.labels).
type RuleLabel struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Source string `json:"source,omitempty"`
}

// LogConfig is Cilium's per-rule policy log setting.
type LogConfig struct {
	Value string `json:"value,omitempty"`
}

// DefaultDeny says whether a rule turns on default deny in each direction
// (nil = yes, when the rule has rules in that direction).
type DefaultDeny struct {
	Ingress *bool `json:"ingress,omitempty"`
	Egress  *bool `json:"egress,omitempty"`
}

// IngressCommon holds the peers of an ingress or ingressDeny rule.
type IngressCommon struct {
	FromEndpoints []Selector `json:"fromEndpoints,omitempty"`
	FromRequires  []Selector `json:"fromRequires,omitempty"`
	FromCIDR      []string   `json:"fromCIDR,omitempty"`
	FromCIDRSet   []CIDRRule `json:"fromCIDRSet,omitempty"`
	FromEntities  []string   `json:"fromEntities,omitempty"`
	FromGroups    []Groups   `json:"fromGroups,omitempty"`
	FromNodes     []Selector `json:"fromNodes,omitempty"`
	ICMPs         []ICMPRule `json:"icmps,omitempty"`
}

// IngressRule allows traffic into the selected endpoints.
type IngressRule struct {
	IngressCommon  `json:",inline"`
	ToPorts        []PortRule      `json:"toPorts,omitempty"`
	Authentication *Authentication `json:"authentication,omitempty"`
}

// IngressDenyRule denies traffic into the selected endpoints.
type IngressDenyRule struct {
	IngressCommon `json:",inline"`
	ToPorts       []PortDenyRule `json:"toPorts,omitempty"`
}

// EgressCommon holds the peers of an egress or egressDeny rule.
type EgressCommon struct {
	ToEndpoints []Selector `json:"toEndpoints,omitempty"`
	ToRequires  []Selector `json:"toRequires,omitempty"`
	ToCIDR      []string   `json:"toCIDR,omitempty"`
	ToCIDRSet   []CIDRRule `json:"toCIDRSet,omitempty"`
	ToEntities  []string   `json:"toEntities,omitempty"`
	ToServices  []Service  `json:"toServices,omitempty"`
	ToGroups    []Groups   `json:"toGroups,omitempty"`
	ToNodes     []Selector `json:"toNodes,omitempty"`
	ICMPs       []ICMPRule `json:"icmps,omitempty"`
}

// EgressRule allows traffic out of the selected endpoints.
type EgressRule struct {
	EgressCommon   `json:",inline"`
	ToPorts        []PortRule      `json:"toPorts,omitempty"`
	ToFQDNs        []FQDNSelector  `json:"toFQDNs,omitempty"`
	Authentication *Authentication `json:"authentication,omitempty"`
}

// EgressDenyRule denies traffic out of the selected endpoints.
type EgressDenyRule struct {
	EgressCommon `json:",inline"`
	ToPorts      []PortDenyRule `json:"toPorts,omitempty"`
}

// CIDRRule is a CIDR with exceptions, or a reference to a CiliumCIDRGroup.
type CIDRRule struct {
	Cidr              string    `json:"cidr,omitempty"`
	CIDRGroupRef      string    `json:"cidrGroupRef,omitempty"`
	CIDRGroupSelector *Selector `json:"cidrGroupSelector,omitempty"`
	Except            []string  `json:"except,omitempty"`
}

// Service selects Kubernetes services (toServices).
type Service struct {
	K8sServiceSelector *K8sServiceSelector `json:"k8sServiceSelector,omitempty"`
	K8sService         *K8sServiceName     `json:"k8sService,omitempty"`
}

// K8sServiceSelector selects services by label.
type K8sServiceSelector struct {
	Selector  Selector `json:"selector"`
	Namespace string   `json:"namespace,omitempty"`
}

// K8sServiceName names one service.
type K8sServiceName struct {
	ServiceName string `json:"serviceName,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
}

// Groups selects cloud-provider groups (toGroups).
type Groups struct {
	AWS *AWSGroup `json:"aws,omitempty"`
}

// AWSGroup selects AWS security groups.
type AWSGroup struct {
	Labels              map[string]string `json:"labels,omitempty"`
	SecurityGroupsIds   []string          `json:"securityGroupsIds,omitempty"`
	SecurityGroupsNames []string          `json:"securityGroupsNames,omitempty"`
	Region              string            `json:"region,omitempty"`
}

// FQDNSelector matches DNS names (toFQDNs) and DNS L7 rules.
type FQDNSelector struct {
	MatchName    string `json:"matchName,omitempty"`
	MatchPattern string `json:"matchPattern,omitempty"`
}

// Authentication requires mutual authentication before traffic is allowed.
type Authentication struct {
	Mode string `json:"mode"`
}

// PortRule is an allow toPorts element: ports plus optional L7 rules and TLS.
type PortRule struct {
	Ports          []PortProtocol `json:"ports,omitempty"`
	TerminatingTLS *TLSContext    `json:"terminatingTLS,omitempty"`
	OriginatingTLS *TLSContext    `json:"originatingTLS,omitempty"`
	ServerNames    []string       `json:"serverNames,omitempty"`
	Listener       *Listener      `json:"listener,omitempty"`
	Rules          *L7Rules       `json:"rules,omitempty"`
}

// PortDenyRule is a deny toPorts element: ports only.
type PortDenyRule struct {
	Ports []PortProtocol `json:"ports,omitempty"`
}

// PortProtocol is one port (number or name), optional endPort, and protocol.
type PortProtocol struct {
	Port     PortValue `json:"port,omitempty"`
	EndPort  int32     `json:"endPort,omitempty"`
	Protocol string    `json:"protocol,omitempty"`
}

// PortValue is a port number or name; YAML users write both 80 and "80".
type PortValue string

// UnmarshalJSON accepts a JSON string or number. Anything else is kept as
// written, so that validation refuses it with its field path (an error here
// would stop the JSON decoder without saying where).
func (p *PortValue) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*p = PortValue(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		*p = PortValue(b)
		return nil
	}
	*p = PortValue(n.String())
	return nil
}

// Number returns the port number and true, or 0 and false for a name.
func (p PortValue) Number() (int, bool) {
	n, err := strconv.Atoi(string(p))
	return n, err == nil
}

// TLSContext names TLS material for the L7 proxy.
type TLSContext struct {
	Secret      *SecretRef `json:"secret,omitempty"`
	TrustedCA   string     `json:"trustedCA,omitempty"`
	Certificate string     `json:"certificate,omitempty"`
	PrivateKey  string     `json:"privateKey,omitempty"`
}

// SecretRef names a Kubernetes secret.
type SecretRef struct {
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// Listener redirects to a listener of a CiliumEnvoyConfig.
type Listener struct {
	EnvoyConfig *EnvoyConfigRef `json:"envoyConfig"`
	Name        string          `json:"name"`
	Priority    uint8           `json:"priority,omitempty"`
}

// EnvoyConfigRef names a CiliumEnvoyConfig or CiliumClusterwideEnvoyConfig.
type EnvoyConfigRef struct {
	Kind string `json:"kind,omitempty"`
	Name string `json:"name"`
}

// L7Rules are the application-protocol rules of a toPorts element.
type L7Rules struct {
	HTTP    []HTTPRule          `json:"http,omitempty"`
	Kafka   []KafkaRule         `json:"kafka,omitempty"`
	DNS     []FQDNSelector      `json:"dns,omitempty"`
	L7Proto string              `json:"l7proto,omitempty"`
	L7      []map[string]string `json:"l7,omitempty"`
}

// Empty reports whether no L7 rule is present (so no proxy redirect is needed).
func (r *L7Rules) Empty() bool {
	return r == nil || (r.HTTP == nil && r.Kafka == nil && r.DNS == nil && r.L7Proto == "" && r.L7 == nil)
}

// HTTPRule matches HTTP requests.
type HTTPRule struct {
	Path          string        `json:"path,omitempty"`
	Method        string        `json:"method,omitempty"`
	Host          string        `json:"host,omitempty"`
	Headers       []string      `json:"headers,omitempty"`
	HeaderMatches []HeaderMatch `json:"headerMatches,omitempty"`
}

// HeaderMatch matches (or on mismatch, rewrites) one HTTP header.
type HeaderMatch struct {
	Mismatch string     `json:"mismatch,omitempty"`
	Name     string     `json:"name"`
	Secret   *SecretRef `json:"secret,omitempty"`
	Value    string     `json:"value,omitempty"`
	// Unresolved, set by resolution in place of Secret, says why the
	// Secret's value could not be read: the proxy never matches the rule.
	Unresolved string `json:"-"`
}

// KafkaRule matches Kafka requests.
type KafkaRule struct {
	Role       string `json:"role,omitempty"`
	APIKey     string `json:"apiKey,omitempty"`
	APIVersion string `json:"apiVersion,omitempty"`
	ClientID   string `json:"clientID,omitempty"`
	Topic      string `json:"topic,omitempty"`
}

// ICMPRule lists ICMP types to allow or deny.
type ICMPRule struct {
	Fields []ICMPField `json:"fields,omitempty"`
}

// ICMPField is one ICMP type (number or name) in one family (IPv4 default).
type ICMPField struct {
	Family string             `json:"family,omitempty"`
	Type   intstr.IntOrString `json:"type"`
}
