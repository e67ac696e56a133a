package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
	networkingv1 "k8s.io/api/networking/v1"
)

// ParseFile parses a YAML (multi-document) or JSON file. It returns every object
// or an error; never part of the file.
func ParseFile(path string) ([]Object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseYAML(data, path)
}

// ParseYAML parses multi-document YAML (JSON is YAML). A top-level array of
// rules is the older Cilium JSON format and is read as bare rules. Kubernetes
// List kinds are expanded. source names the input in errors.
func ParseYAML(data []byte, source string) ([]Object, error) {
	if line := templateLine(data); line > 0 {
		return nil, fmt.Errorf("%s:%d: contains Go template placeholders ({{ ... }}); render the template before parsing", source, line)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []Object
	for doc := 0; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %v", source, doc, err)
		}
		if len(n.Content) == 0 || n.Content[0].Tag == "!!null" {
			continue
		}
		src := Source{File: source, Doc: doc, Line: n.Content[0].Line}
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s: %v", src, err)
		}
		js, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s: not representable as JSON: %v", src, err)
		}
		var objs []Object
		if n.Content[0].Kind == yaml.SequenceNode {
			objs, err = parseRuleArray(js, src)
		} else {
			objs, err = parseDocument(js, src, "")
		}
		if err != nil {
			return nil, positioned(src, n.Content[0], err)
		}
		out = append(out, objs...)
	}
	return out, nil
}

// ParseJSONObject parses one JSON object (not a List).
func ParseJSONObject(data []byte, source string) (Object, error) {
	src := Source{File: source, Line: 1}
	objs, err := parseDocument(data, src, "")
	if err != nil {
		return Object{}, fmt.Errorf("%s: %w", src, err)
	}
	if len(objs) != 1 {
		return Object{}, fmt.Errorf("%s: expected one object, found %d", src, len(objs))
	}
	return objs[0], nil
}

func templateLine(data []byte) int {
	i := bytes.Index(data, []byte("{{"))
	if i < 0 || !bytes.Contains(data[i:], []byte("}}")) {
		return 0
	}
	return bytes.Count(data[:i], []byte("\n")) + 1
}

type typeHeader struct {
	APIVersion string                           `json:"apiVersion"`
	Kind       string                           `json:"kind"`
	Metadata   struct{ Name, Namespace string } `json:"metadata"`
	Items      []json.RawMessage                `json:"items"`
}

// parseDocument parses one object; prefix is the field path of the object
// inside a List ("items[3]"). Errors lead with the field path; the caller
// adds where the document is.
func parseDocument(js []byte, src Source, prefix string) ([]Object, error) {
	fail := func(err error) ([]Object, error) {
		if prefix != "" {
			return nil, fmt.Errorf("%s.%w", prefix, err)
		}
		return nil, err
	}
	var h typeHeader
	if err := json.Unmarshal(js, &h); err != nil {
		return fail(fmt.Errorf("not a Kubernetes object: %v", err))
	}
	if h.Kind == "" {
		return fail(errors.New("kind: missing; not a Kubernetes object"))
	}
	if strings.HasSuffix(h.Kind, "List") && h.Items != nil {
		var out []Object
		for i, item := range h.Items {
			objs, err := parseDocument(item, src, fmt.Sprintf("%sitems[%d]", dot(prefix), i))
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
		}
		return out, nil
	}
	obj := Object{Kind: h.Kind, Namespace: h.Metadata.Namespace, Name: h.Metadata.Name, Source: src}
	switch {
	case h.Kind == KindNetworkPolicy && h.APIVersion == "networking.k8s.io/v1":
		np := &networkingv1.NetworkPolicy{}
		if err := decodeStrict(js, np); err != nil {
			return fail(err)
		}
		if err := validateNetworkPolicy(np); err != nil {
			return fail(err)
		}
		if obj.Namespace == "" {
			obj.Namespace = "default"
		}
		obj.NetworkPolicy = np
	case (h.Kind == KindCNP || h.Kind == KindCCNP) && h.APIVersion == "cilium.io/v2":
		cnp := &CiliumNetworkPolicy{}
		if err := decodeStrict(js, cnp); err != nil {
			return fail(err)
		}
		if err := validateCiliumPolicy(cnp); err != nil {
			return fail(err)
		}
		if h.Kind == KindCCNP {
			obj.Namespace = ""
		} else if obj.Namespace == "" {
			obj.Namespace = "default"
		}
		obj.Cilium = cnp
	case h.Kind == KindCIDRGroup && cidrGroupVersions[h.APIVersion]:
		g, err := parseCIDRGroup(js)
		if err != nil {
			return fail(err)
		}
		obj.CIDRGroup = g
	case h.Kind == KindNetworkPolicy || h.Kind == KindCNP || h.Kind == KindCCNP || h.Kind == KindCIDRGroup:
		return fail(fmt.Errorf("apiVersion: %q is not supported for %s", h.APIVersion, h.Kind))
	default:
		obj.Skipped = true
		obj.Raw = js
	}
	if obj.Name == "" && !obj.Skipped {
		return fail(errors.New("metadata.name: required"))
	}
	return []Object{obj}, nil
}

func dot(prefix string) string {
	if prefix == "" {
		return ""
	}
	return prefix + "."
}

// parseRuleArray reads the older format: a JSON array of bare Cilium rules.
// They are not namespaced and select endpoints in every namespace.
func parseRuleArray(js []byte, src Source) ([]Object, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(js, &raw); err != nil {
		return nil, err
	}
	var out []Object
	for i, r := range raw {
		path := fmt.Sprintf("[%d]", i)
		var rule Rule
		if err := decodeStrict(r, &rule); err != nil {
			return nil, fmt.Errorf("%s%s", path, prefixed(err))
		}
		if err := validateRule(&rule, path); err != nil {
			return nil, err
		}
		name := fmt.Sprintf("rule-%d", i)
		for _, l := range rule.Labels {
			if l.Key == "name" || l.Key == "io.cilium.k8s.policy.name" {
				name = l.Value
			}
		}
		s := src
		s.Doc = i
		out = append(out, Object{Kind: KindCiliumRules, Name: name, Source: s,
			Cilium: &CiliumNetworkPolicy{Spec: &rule}})
	}
	return out, nil
}

// prefixed formats a path-led error for appending after an index.
func prefixed(err error) string {
	s := err.Error()
	if strings.HasPrefix(s, "[") {
		return s
	}
	return "." + s
}
