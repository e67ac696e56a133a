package format

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// decodeNode accepts "80/TCP", "80" (TCP) or {name, port, protocol}.
func (p *ContainerPort) decodeNode(d *decoder, n *yaml.Node, path string) error {
	if n.Kind == yaml.MappingNode {
		type plain ContainerPort
		var v plain
		if err := d.decodeStruct(n, valueOf(&v), path); err != nil {
			return err
		}
		*p = ContainerPort(v)
		if p.Port == 0 {
			return d.errorf(n, path, "port is required")
		}
	} else {
		if n.Kind != yaml.ScalarNode {
			return d.errorf(n, path, `expected "PORT/PROTOCOL" or a mapping, got %s`, describe(n))
		}
		num, proto, _ := strings.Cut(n.Value, "/")
		u, err := strconv.ParseUint(num, 10, 16)
		if err != nil || u == 0 {
			return d.errorf(n, path, `expected "PORT/PROTOCOL" with a port from 1 to 65535, got %q`, n.Value)
		}
		p.Port, p.Protocol = uint16(u), proto
	}
	if p.Protocol == "" {
		p.Protocol = "TCP"
	}
	if !oneOf(p.Protocol, "TCP", "UDP", "SCTP") {
		return d.errorf(n, path, "protocol must be TCP, UDP or SCTP, got %q", p.Protocol)
	}
	return nil
}

// decodeNode accepts a number or a name.
func (p *PortRef) decodeNode(d *decoder, n *yaml.Node, path string) error {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return d.errorf(n, path, "expected a port number or name, got %s", describe(n))
	}
	if u, err := strconv.ParseUint(n.Value, 10, 16); err == nil && u > 0 {
		p.Number = uint16(u)
		return nil
	}
	if n.Tag == "!!int" || n.Value == "" {
		return d.errorf(n, path, "port must be from 1 to 65535, got %s", n.Value)
	}
	p.Name = n.Value
	return nil
}

// decodeNode accepts "ns/pod" or a mapping with exactly one kind of peer.
func (p *Peer) decodeNode(d *decoder, n *yaml.Node, path string) error {
	p.Line = n.Line
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		if _, _, ok := strings.Cut(n.Value, "/"); !ok {
			return d.errorf(n, path, "a pod is written namespace/name, got %q", n.Value)
		}
		p.Pod = n.Value
		return nil
	}
	type plain Peer
	var v plain
	if err := d.decodeStruct(n, valueOf(&v), path); err != nil {
		return err
	}
	*p = Peer(v)
	p.Line = n.Line
	var kinds []string
	for name, set := range map[string]bool{"ip": p.IP != "" && p.FQDN == "", "node": p.Node != "", "cidr": p.CIDR != "", "service": p.Service != "", "fqdn": p.FQDN != ""} {
		if set {
			kinds = append(kinds, name)
		}
	}
	if len(kinds) != 1 {
		return d.errorf(n, path, "give exactly one of ip, node, cidr, service, fqdn (or a pod as namespace/name)")
	}
	if !p.Port.IsZero() && p.Service == "" {
		return d.errorf(n, path, "port belongs to the probe, not to the peer, unless the peer is a service")
	}
	if p.Service != "" && p.Port.IsZero() {
		return d.errorf(n, path, "a service peer needs its port")
	}
	return nil
}

// decodeNode accepts one reachability mapping or a list of them.
func (r *Reachabilities) decodeNode(d *decoder, n *yaml.Node, path string) error {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	for i, item := range items {
		p := path
		if n.Kind == yaml.SequenceNode {
			p = fmt.Sprintf("%s[%d]", path, i)
		}
		var m Reachability
		if err := d.decodeStruct(item, valueOf(&m), p); err != nil {
			return err
		}
		if err := d.parseMatrix(item, &m, p); err != nil {
			return err
		}
		*r = append(*r, m)
	}
	return nil
}

// decodeNode accepts an object name or an inline object.
func (o *ObjectRef) decodeNode(d *decoder, n *yaml.Node, path string) error {
	o.Line = n.Line
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		o.Name = n.Value
		return nil
	}
	o.Inline = &Object{}
	return o.Inline.decodeNode(d, n, path)
}

// decodeNode keeps any Kubernetes object as JSON, after checking that it is
// identifiable (apiVersion, kind, metadata.name).
func (o *Object) decodeNode(d *decoder, n *yaml.Node, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.errorf(n, path, "expected an object (a mapping with apiVersion, kind, metadata), got %s", describe(n))
	}
	var head struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name      string            `yaml:"name"`
			Namespace string            `yaml:"namespace"`
			Labels    map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
	}
	if err := n.Decode(&head); err != nil {
		return d.errorf(n, path, "object header: %v", err)
	}
	if head.APIVersion == "" || head.Kind == "" || head.Metadata.Name == "" {
		return d.errorf(n, path, "an object needs apiVersion, kind and metadata.name")
	}
	var body any
	if err := n.Decode(&body); err != nil {
		return d.errorf(n, path, "%v", err)
	}
	js, err := json.Marshal(body)
	if err != nil {
		return d.errorf(n, path, "object is not representable as JSON: %v", err)
	}
	*o = Object{
		APIVersion: head.APIVersion,
		Kind:       head.Kind,
		Namespace:  head.Metadata.Namespace,
		Name:       head.Metadata.Name,
		Labels:     head.Metadata.Labels,
		Source:     fmt.Sprintf("%s:%d", d.file, n.Line),
		JSON:       js,
	}
	return nil
}

func oneOf(s string, options ...string) bool {
	for _, o := range options {
		if s == o {
			return true
		}
	}
	return false
}
