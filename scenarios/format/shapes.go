package format

import (
	"fmt"
	"strconv"
	"strings"
)

// The types below have more than one YAML shape ("80/TCP" or a mapping, a pod
// name or a mapping, ...). They implement yaml.v3's older unmarshaler
// interface on purpose: its unmarshal callback decodes with the document's
// decoder, so KnownFields still refuses unknown fields inside them (the newer
// UnmarshalYAML(*yaml.Node) decodes with a fresh decoder that does not).
// They only sort the shapes out; a value of the right type but a wrong
// content is kept for validate, which names its path and line.

type containerPortFields ContainerPort

// UnmarshalYAML accepts "80/TCP", "80" (TCP) or {name, port, protocol}.
func (p *ContainerPort) UnmarshalYAML(unmarshal func(any) error) error {
	var raw any
	if err := unmarshal(&raw); err != nil {
		return err
	}
	switch v := raw.(type) {
	case map[string]any:
		return unmarshal((*containerPortFields)(p))
	case string, int:
		text := fmt.Sprint(v)
		num, proto, _ := strings.Cut(text, "/")
		u, err := strconv.ParseUint(num, 10, 16)
		if err != nil || u == 0 {
			p.bad = text
			return nil
		}
		p.Port, p.Protocol = uint16(u), proto
		return nil
	}
	p.bad = describe(raw)
	return nil
}

// UnmarshalYAML accepts a number or a name.
func (p *PortRef) UnmarshalYAML(unmarshal func(any) error) error {
	var raw any
	if err := unmarshal(&raw); err != nil {
		return err
	}
	switch v := raw.(type) {
	case int:
		if v < 1 || v > 65535 {
			p.bad = strconv.Itoa(v)
			return nil
		}
		p.Number = uint16(v)
	case string:
		if u, err := strconv.ParseUint(v, 10, 16); err == nil && u > 0 {
			p.Number = uint16(u)
		} else if v == "" {
			p.bad = `""`
		} else {
			p.Name = v
		}
	default:
		p.bad = describe(raw)
	}
	return nil
}

// UnmarshalYAML accepts one pod or a list of pods.
func (b *Backends) UnmarshalYAML(unmarshal func(any) error) error {
	var raw any
	if err := unmarshal(&raw); err != nil {
		return err
	}
	switch v := raw.(type) {
	case string:
		b.Pods = []string{v}
		return nil
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				b.bad = "expected pods (namespace/name), got " + describe(e) + " in the list"
				return nil
			}
			b.Pods = append(b.Pods, s)
		}
		return nil
	}
	b.bad = "expected a pod (namespace/name) or a list of pods, got " + describe(raw)
	return nil
}

type sourceIPFields SourceIP

// UnmarshalYAML accepts an address or {node: N}.
func (s *SourceIP) UnmarshalYAML(unmarshal func(any) error) error {
	var raw any
	if err := unmarshal(&raw); err != nil {
		return err
	}
	switch v := raw.(type) {
	case string:
		s.IP = v
		return nil
	case map[string]any:
		return unmarshal((*sourceIPFields)(s))
	}
	s.bad = "expected an IP address or {node: NAME}, got " + describe(raw)
	return nil
}

type peerFields Peer

// UnmarshalYAML accepts "ns/pod" or a mapping with one kind of peer.
func (p *Peer) UnmarshalYAML(unmarshal func(any) error) error {
	var raw any
	if err := unmarshal(&raw); err != nil {
		return err
	}
	switch v := raw.(type) {
	case string:
		p.Pod = v
		if _, _, ok := strings.Cut(v, "/"); !ok {
			p.bad = fmt.Sprintf("a pod is written namespace/name, got %q", v)
		}
		return nil
	case map[string]any:
		return unmarshal((*peerFields)(p))
	}
	p.bad = "expected a pod (namespace/name) or a mapping, got " + describe(raw)
	return nil
}

type reachabilityFields Reachability

// UnmarshalYAML accepts one reachability mapping or a list of them.
func (r *Reachabilities) UnmarshalYAML(unmarshal func(any) error) error {
	var raw any
	if err := unmarshal(&raw); err != nil {
		return err
	}
	if _, ok := raw.(map[string]any); ok {
		var one reachabilityFields
		err := unmarshal(&one)
		*r = Reachabilities{Reachability(one)}
		return err
	}
	var list []reachabilityFields
	err := unmarshal(&list)
	for _, m := range list {
		*r = append(*r, Reachability(m))
	}
	return err
}

// UnmarshalYAML accepts an object name or an inline object; the object itself
// is read from the document's node tree afterwards (objectAt).
func (o *ObjectRef) UnmarshalYAML(unmarshal func(any) error) error {
	var raw any
	if err := unmarshal(&raw); err != nil {
		return err
	}
	if name, ok := raw.(string); ok {
		o.Name = name
		return nil
	}
	o.Inline = &Object{}
	return nil
}

// UnmarshalYAML only requires a mapping; the object is read from the
// document's node tree afterwards (objectAt), where its positions are known.
func (o *Object) UnmarshalYAML(unmarshal func(any) error) error {
	var m map[string]any
	return unmarshal(&m)
}

func oneOf(s string, options ...string) bool {
	for _, o := range options {
		if s == o {
			return true
		}
	}
	return false
}

// describe names a decoded YAML value's shape for messages.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "nothing"
	case map[string]any, map[any]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return strconv.Quote(v)
	}
	return fmt.Sprint(v)
}
