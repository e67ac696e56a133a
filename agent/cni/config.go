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
	Gateway     netip.Addr
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
		return nil, errors.New("podCIDRs: missing (need at least one IPv4 CIDR)")
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
		if !p.Addr().Is4() {
			return nil, fmt.Errorf("podCIDRs[%d]: %s is not IPv4 (only IPv4 is supported)", i, s)
		}
		// A /31 or /32 has no room for a gateway and a pod.
		if p.Bits() > 30 {
			return nil, fmt.Errorf("podCIDRs[%d]: %s is too small (at most /30)", i, s)
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
	if raw.Gateway == "" {
		return nil, errors.New("gateway: missing")
	}
	gw, err := netip.ParseAddr(raw.Gateway)
	if err != nil {
		return nil, fmt.Errorf("gateway: %q is not an IP address", raw.Gateway)
	}
	cidr := c.cidrOf(gw)
	if cidr == nil {
		return nil, fmt.Errorf("gateway: %s is not inside podCIDRs", gw)
	}
	if gw == cidr.Addr() || gw == broadcast(*cidr) {
		return nil, fmt.Errorf("gateway: %s is the network or broadcast address of %s", gw, cidr)
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
