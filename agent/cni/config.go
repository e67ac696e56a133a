package cni

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
)

// Config is the plugin's entry in the conflist.
type Config struct {
	CNIVersion  string
	Name        string
	AgentSocket string
	PodCIDRs    []netip.Prefix
	Gateway     netip.Addr // the IPv4 gateway; invalid when there is no IPv4 CIDR
	IPAMDir     string
	MTU         int // 0 leaves the kernel's default
}

// rawConfig is the wire form. It also lists the fields the CNI spec and
// libcni put in every plugin's config (prevResult on CHECK, runtimeConfig
// when capabilities are declared), so a strict decode refuses only what is
// really unknown: a misspelt agentSocket must not silently mean "no agent".
type rawConfig struct {
	CNIVersion    string          `json:"cniVersion"`
	Name          string          `json:"name"`
	Type          string          `json:"type"`
	Capabilities  json.RawMessage `json:"capabilities,omitempty"`
	RuntimeConfig json.RawMessage `json:"runtimeConfig,omitempty"`
	Args          json.RawMessage `json:"args,omitempty"`
	IPAM          json.RawMessage `json:"ipam,omitempty"`
	DNS           json.RawMessage `json:"dns,omitempty"`
	PrevResult    json.RawMessage `json:"prevResult,omitempty"`
	Attachments   json.RawMessage `json:"cni.dev/valid-attachments,omitempty"`

	AgentSocket string   `json:"agentSocket"`
	PodCIDRs    []string `json:"podCIDRs"`
	Gateway     string   `json:"gateway"`
	IPAMDir     string   `json:"ipamDir"`
	MTU         *int     `json:"mtu,omitempty"`
}

// PluginType is the value of "type" that selects this plugin.
const PluginType = "kestrel-cni"

// ParseConfig decodes and checks the plugin's config. Errors name the field,
// and come back as CNI errors with the "invalid network config" code, so the
// runtime shows them as they are.
func ParseConfig(data []byte) (*Config, error) {
	c, err := parseConfig(data)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "kestrel-cni config: "+err.Error(), "")
	}
	return c, nil
}

func parseConfig(data []byte) (*Config, error) {
	var raw rawConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, describeJSONError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON object")
	}
	if raw.Type != PluginType {
		return nil, fmt.Errorf("type: want %q, got %q", PluginType, raw.Type)
	}
	if raw.AgentSocket == "" {
		return nil, errors.New("agentSocket: missing")
	}
	if raw.IPAMDir == "" {
		return nil, errors.New("ipamDir: missing")
	}
	if len(raw.PodCIDRs) == 0 {
		return nil, errors.New("podCIDRs: missing (need a CIDR per address family the pods get)")
	}
	c := &Config{
		CNIVersion:  raw.CNIVersion,
		Name:        raw.Name,
		AgentSocket: raw.AgentSocket,
		IPAMDir:     raw.IPAMDir,
	}
	for i, s := range raw.PodCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("podCIDRs[%d]: %q is not a CIDR", i, s)
		}
		// An IPv4 /31 or /32 has no room for a gateway and a pod; an IPv6
		// range keeps its first address back, so it needs room for two.
		if p.Addr().Is4() && p.Bits() > 30 || p.Addr().Is6() && p.Bits() > 127 {
			return nil, fmt.Errorf("podCIDRs[%d]: %s is too small (at most /30 for IPv4, /127 for IPv6)", i, s)
		}
		if p.Addr().Is4In6() {
			return nil, fmt.Errorf("podCIDRs[%d]: %s is an IPv4-mapped range (write it as IPv4)", i, s)
		}
		if p.Masked() != p {
			return nil, fmt.Errorf("podCIDRs[%d]: %s has host bits set (did you mean %s?)", i, s, p.Masked())
		}
		for j, q := range c.PodCIDRs {
			if q.Overlaps(p) {
				return nil, fmt.Errorf("podCIDRs[%d]: %s overlaps podCIDRs[%d] %s", i, s, j, q)
			}
		}
		c.PodCIDRs = append(c.PodCIDRs, p)
	}
	gw, err := parseGateway(raw.Gateway, c)
	if err != nil {
		return nil, err
	}
	c.Gateway = gw
	if raw.MTU != nil {
		if *raw.MTU < 68 || *raw.MTU > 65535 {
			return nil, fmt.Errorf("mtu: %d is out of range [68, 65535]", *raw.MTU)
		}
		c.MTU = *raw.MTU
	}
	return c, nil
}

// parseGateway checks the IPv4 gateway. It is needed exactly when there is
// an IPv4 pod CIDR: IPv6 pods route through GatewayV6 on their host veth,
// which is link-local and so the same on every node.
func parseGateway(s string, c *Config) (netip.Addr, error) {
	if s == "" {
		if c.HasFamily(false) {
			return netip.Addr{}, errors.New("gateway: missing (the IPv4 pods' gateway)")
		}
		return netip.Addr{}, nil
	}
	gw, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("gateway: %q is not an IP address", s)
	}
	if !gw.Is4() {
		return netip.Addr{}, fmt.Errorf("gateway: %s is not IPv4 (it names the IPv4 gateway; IPv6 pods route through %s on their host veth)", gw, GatewayV6)
	}
	cidr := c.cidrOf(gw)
	if cidr == nil {
		return netip.Addr{}, fmt.Errorf("gateway: %s is not inside podCIDRs", gw)
	}
	if gw == cidr.Addr() || gw == broadcast(*cidr) {
		return netip.Addr{}, fmt.Errorf("gateway: %s is the network or broadcast address of %s", gw, cidr)
	}
	return gw, nil
}

// GatewayV6 is the IPv6 pods' gateway: a link-local address every host veth
// holds, so the node's kernel answers the pod's neighbour solicitation for
// it as for any address of its own, with no proxy entry per pod. Being
// link-local, it is the same on every node and needs no room in a pod CIDR.
var GatewayV6 = netip.MustParseAddr("fe80::1")

// HasFamily says whether some pod CIDR is IPv6 (v6) or IPv4 (!v6).
func (c *Config) HasFamily(v6 bool) bool {
	for _, p := range c.PodCIDRs {
		if p.Addr().Is6() == v6 {
			return true
		}
	}
	return false
}

// GatewayOf is the gateway of pods' addresses in ip's family.
func (c *Config) GatewayOf(ip netip.Addr) netip.Addr {
	if ip.Is6() {
		return GatewayV6
	}
	return c.Gateway
}

// cidrOf returns the pod CIDR holding a, or nil.
func (c *Config) cidrOf(a netip.Addr) *netip.Prefix {
	for i := range c.PodCIDRs {
		if c.PodCIDRs[i].Contains(a) {
			return &c.PodCIDRs[i]
		}
	}
	return nil
}

// describeJSONError rewrites encoding/json's messages so they lead with the
// field at fault.
func describeJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("%s: want %s, got JSON %s", te.Field, te.Type, te.Value)
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return fmt.Errorf("%s: unknown field", f)
	}
	return fmt.Errorf("not valid JSON: %w", err)
}
