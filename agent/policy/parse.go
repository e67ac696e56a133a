package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/kestrelnet/kestrel/agent/yamldoc"
)

// Error is one problem in a policy file: where, which field, what.
type Error struct {
	File string
	Line int
	Path string // field path inside the document; empty for the document itself
	Msg  string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Path, e.Msg)
}

// Errors is every problem found in one input, in line order; one per line.
type Errors []*Error

func (e Errors) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "\n")
}

// ParseFile parses a YAML (multi-document) or JSON file. It returns every object
// or, when anything in the file is wrong, Errors naming every problem; never
// part of the file.
func ParseFile(path string) ([]Object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseYAML(data, path)
}

// ParseYAML parses multi-document YAML (JSON is YAML). A top-level array of
// rules is the older Cilium JSON format and is read as bare rules. Kubernetes
// List kinds are expanded. source names the input in errors. Every document
// is checked; the error, if any, is Errors.
func ParseYAML(data []byte, source string) ([]Object, error) {
	if line := templateLine(data); line > 0 {
		return nil, Errors{{File: source, Line: line, Msg: "contains Go template placeholders ({{ ... }}); render the template before parsing"}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []Object
	var errs Errors
	for doc := 0; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The parser cannot go past a syntax error: nothing after it is read.
			line, msg := yamldoc.SyntaxLine(err)
			errs = append(errs, &Error{File: source, Line: line, Msg: msg})
			break
		}
		if len(n.Content) == 0 || n.Content[0].Tag == "!!null" {
			continue
		}
		root := n.Content[0]
		src := Source{File: source, Doc: doc, Line: root.Line}
		var objs []Object
		var ferrs Errors
		if root.Kind == yaml.SequenceNode {
			objs, ferrs = parseRuleArray(root, src)
		} else {
			objs, ferrs = parseDocument(root, src, "")
		}
		errs = append(errs, ferrs...)
		out = append(out, objs...)
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
		return nil, errs
	}
	return out, nil
}

// ParseJSONObject parses one JSON object (not a List).
func ParseJSONObject(data []byte, source string) (Object, error) {
	objs, err := ParseYAML(data, source)
	if err != nil {
		return Object{}, err
	}
	if len(objs) != 1 {
		return Object{}, Errors{{File: source, Line: 1, Msg: fmt.Sprintf("expected one object, found %d", len(objs))}}
	}
	return objs[0], nil
}

// ParseNode parses one object given as a YAML node of a larger file (an
// object inside a scenario); paths in errors start with prefix.
func ParseNode(n *yaml.Node, source, prefix string) ([]Object, error) {
	objs, errs := parseDocument(n, Source{File: source, Line: n.Line}, prefix)
	if len(errs) > 0 {
		return nil, errs
	}
	return objs, nil
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
}

// located turns a document's field errors into file:line errors; prefix is
// the document's own path in the file ("items[3]" inside a List).
func located(src Source, doc *yamldoc.Doc, prefix string, fes []fieldError) Errors {
	var out Errors
	for _, fe := range fes {
		line := fe.Line
		if line == 0 && doc != nil {
			line = doc.Line(fe.Path)
		}
		if line == 0 {
			line = src.Line
		}
		out = append(out, &Error{File: src.File, Line: line, Path: joinPath(prefix, fe.Path), Msg: fe.Msg})
	}
	return out
}

// parseDocument parses one object (prefix is its path in the file, e.g.
// "items[3]"), reporting every problem in it.
func parseDocument(n *yaml.Node, src Source, prefix string) ([]Object, Errors) {
	src.Line = n.Line
	doc, err := yamldoc.Convert(n, nil)
	if err != nil {
		return nil, located(src, nil, prefix, []fieldError{yamlError(err)})
	}
	var h typeHeader
	if err := json.Unmarshal(doc.JSON, &h); err != nil || h.Kind == "" {
		return nil, located(src, doc, prefix, []fieldError{{Path: "kind", Msg: "missing or not a string; not a Kubernetes object"}})
	}
	if strings.HasSuffix(h.Kind, "List") {
		if items := yamldoc.Child(n, "items"); items != nil && items.Kind == yaml.SequenceNode {
			var out []Object
			var errs Errors
			for i, item := range items.Content {
				objs, ierrs := parseDocument(item, src, joinPath(prefix, fmt.Sprintf("items[%d]", i)))
				out = append(out, objs...)
				errs = append(errs, ierrs...)
			}
			return out, errs
		}
	}
	obj := Object{Kind: h.Kind, Namespace: h.Metadata.Namespace, Name: h.Metadata.Name, Source: src}
	var fes []fieldError
	switch {
	case h.Kind == KindNetworkPolicy && h.APIVersion == "networking.k8s.io/v1":
		np, d, nulled, errs := decodeStrict[networkingv1.NetworkPolicy](n)
		fes = append(fes, errs...)
		if np != nil {
			c := &checker{}
			validateNetworkPolicy(c, np)
			fes = append(fes, unspoiled(c.errs, nulled)...)
			doc = d
		}
		if obj.Namespace == "" {
			obj.Namespace = "default"
		}
		obj.NetworkPolicy = np
	case (h.Kind == KindCNP || h.Kind == KindCCNP) && h.APIVersion == "cilium.io/v2":
		cnp, d, nulled, errs := decodeStrict[CiliumNetworkPolicy](n)
		fes = append(fes, errs...)
		if cnp != nil {
			c := &checker{}
			validateCiliumPolicy(c, cnp)
			fes = append(fes, unspoiled(c.errs, nulled)...)
			doc = d
		}
		if h.Kind == KindCCNP {
			obj.Namespace = ""
		} else if obj.Namespace == "" {
			obj.Namespace = "default"
		}
		obj.Cilium = cnp
	case h.Kind == KindCIDRGroup && cidrGroupVersions[h.APIVersion]:
		g, d, nulled, errs := decodeStrict[CiliumCIDRGroup](n)
		fes = append(fes, errs...)
		if g != nil {
			c := &checker{}
			validateCIDRGroup(c, g)
			fes = append(fes, unspoiled(c.errs, nulled)...)
			doc = d
		}
		obj.CIDRGroup = g
	case h.Kind == KindNetworkPolicy || h.Kind == KindCNP || h.Kind == KindCCNP || h.Kind == KindCIDRGroup:
		fes = append(fes, fieldError{Path: "apiVersion", Msg: fmt.Sprintf("%q is not supported for %s", h.APIVersion, h.Kind)})
	default:
		obj.Skipped = true
		obj.Raw = doc.JSON
	}
	if obj.Name == "" && !obj.Skipped {
		fes = append(fes, fieldError{Path: "metadata.name", Msg: "required"})
	}
	if len(fes) > 0 {
		return nil, located(src, doc, prefix, fes)
	}
	return []Object{obj}, nil
}

func unspoiled(fes []fieldError, nulled map[string]bool) []fieldError {
	var out []fieldError
	for _, fe := range fes {
		if !spoiled(fe.Path, nulled) {
			out = append(out, fe)
		}
	}
	return out
}

// parseRuleArray reads the older format: a JSON array of bare Cilium rules.
// They are not namespaced and select endpoints in every namespace.
func parseRuleArray(n *yaml.Node, src Source) ([]Object, Errors) {
	var out []Object
	var errs Errors
	for i, item := range n.Content {
		prefix := fmt.Sprintf("[%d]", i)
		rule, doc, nulled, fes := decodeStrict[Rule](item)
		if rule != nil {
			c := &checker{}
			validateRule(c, rule, "")
			fes = append(fes, unspoiled(c.errs, nulled)...)
		}
		if len(fes) > 0 {
			errs = append(errs, located(Source{File: src.File, Line: item.Line}, doc, prefix, fes)...)
			continue
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
			Cilium: &CiliumNetworkPolicy{Spec: rule}})
	}
	return out, errs
}
