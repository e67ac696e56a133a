// Package yamldoc turns one YAML document (a yaml.v3 node tree) into JSON for a
// strict JSON decoder, and keeps for every value its field path and line, so
// that whatever the decoder or a validator reports by field path, or by byte
// offset in the JSON, can be given as file:line.
//
// Paths are written the way sigs.k8s.io/json writes them in its strict errors:
// keys joined by ".", list indices as "[i]" (spec.ingress[0].toPorts[1].ports).
package yamldoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is a problem at a line of the document, naming the field path.
type Error struct {
	Line int
	Path string // empty: the document (or the position has no path)
	Msg  string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Path, e.Msg)
}

// Doc is one document as JSON, with the position of every value in it.
type Doc struct {
	Node  *yaml.Node
	JSON  []byte
	spans []span                // every value's byte range in JSON, in order of start
	lines map[string]int        // field path -> line of its key (mapping) or item (list)
	nodes map[string]*yaml.Node // field path -> its value
	keys  map[lineKey]string    // a key at a line -> the path of its mapping
}

type lineKey struct {
	line int
	key  string
}

type span struct {
	start, end int
	path       string
	line       int
}

// maxValues bounds the values one document may expand to, so that YAML
// aliases cannot blow a small file up into a huge one.
const maxValues = 1 << 20

// Convert writes n as JSON. Values whose path is in null are written as null
// (which every Go type accepts), so that a decoder can be run again past
// values it could not take without shifting the indices of their neighbours.
func Convert(n *yaml.Node, null map[string]bool) (*Doc, error) {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	c := &converter{null: null, doc: &Doc{Node: n, lines: map[string]int{"": n.Line},
		nodes: map[string]*yaml.Node{}, keys: map[lineKey]string{}}}
	if err := c.value(n, ""); err != nil {
		return nil, err
	}
	c.doc.JSON = c.buf.Bytes()
	return c.doc, nil
}

type converter struct {
	buf    bytes.Buffer
	null   map[string]bool
	doc    *Doc
	values int
}

func (c *converter) value(n *yaml.Node, path string) error {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if c.values++; c.values > maxValues {
		return &Error{Line: n.Line, Path: path, Msg: "the document expands to too many values (aliases?)"}
	}
	c.doc.nodes[path] = n
	start := c.buf.Len()
	i := len(c.doc.spans)
	c.doc.spans = append(c.doc.spans, span{start: start, path: path, line: n.Line})
	var err error
	switch {
	case c.null[path]:
		c.buf.WriteString("null")
	case n.Kind == yaml.MappingNode:
		err = c.mapping(n, path)
	case n.Kind == yaml.SequenceNode:
		c.buf.WriteByte('[')
		for j, item := range n.Content {
			if j > 0 {
				c.buf.WriteByte(',')
			}
			p := fmt.Sprintf("%s[%d]", path, j)
			c.doc.lines[p] = item.Line
			if err = c.value(item, p); err != nil {
				break
			}
		}
		c.buf.WriteByte(']')
	case n.Kind == yaml.ScalarNode:
		err = c.scalar(n, path)
	default:
		err = &Error{Line: n.Line, Path: path, Msg: "unexpected YAML node"}
	}
	c.doc.spans[i].end = c.buf.Len()
	return err
}

// mapping writes every key as written, duplicates included: the JSON decoder
// is the one that reports duplicate fields. Merge keys (<<) add the keys of
// the mappings they name that the mapping does not have itself.
func (c *converter) mapping(n *yaml.Node, path string) error {
	pairs, err := mergedPairs(n, 0)
	if err != nil {
		err.(*Error).Path = path
		return err
	}
	c.buf.WriteByte('{')
	for j, kv := range pairs {
		k, v := kv[0], kv[1]
		if j > 0 {
			c.buf.WriteByte(',')
		}
		key, _ := json.Marshal(k.Value)
		c.buf.Write(key)
		c.buf.WriteByte(':')
		p := k.Value
		if path != "" {
			p = path + "." + k.Value
		}
		c.doc.lines[p] = k.Line
		if _, dup := c.doc.keys[lineKey{k.Line, k.Value}]; !dup {
			c.doc.keys[lineKey{k.Line, k.Value}] = path
		}
		if err := c.value(v, p); err != nil {
			return err
		}
	}
	c.buf.WriteByte('}')
	return nil
}

// mergedPairs is a mapping's key/value pairs: its own, in order, then those
// its merge keys bring that it does not have (the first merged mapping that
// has a key wins, as YAML's merge key type says).
func mergedPairs(n *yaml.Node, depth int) ([][2]*yaml.Node, error) {
	if depth > 100 {
		return nil, &Error{Line: n.Line, Msg: "merge keys nested too deeply"}
	}
	var own [][2]*yaml.Node
	var merged []*yaml.Node
	have := map[string]bool{}
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, v := n.Content[j], n.Content[j+1]
		for k.Kind == yaml.AliasNode {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			return nil, &Error{Line: k.Line, Msg: "a mapping key must be a plain scalar"}
		}
		if k.ShortTag() == "!!merge" {
			for v.Kind == yaml.AliasNode {
				v = v.Alias
			}
			items := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				items = v.Content
			}
			for _, m := range items {
				for m.Kind == yaml.AliasNode {
					m = m.Alias
				}
				if m.Kind != yaml.MappingNode {
					return nil, &Error{Line: k.Line, Msg: "a merge key (<<) takes a mapping or a list of mappings"}
				}
				merged = append(merged, m)
			}
			continue
		}
		own = append(own, [2]*yaml.Node{k, v})
		have[k.Value] = true
	}
	for _, m := range merged {
		pairs, err := mergedPairs(m, depth+1)
		if err != nil {
			return nil, err
		}
		for _, kv := range pairs {
			if !have[kv[0].Value] {
				have[kv[0].Value] = true
				own = append(own, kv)
			}
		}
	}
	return own, nil
}

// scalar resolves a scalar by its YAML tag, as a YAML-to-JSON conversion does:
// null, booleans and numbers become JSON literals, everything else a string.
func (c *converter) scalar(n *yaml.Node, path string) error {
	var v any
	switch n.ShortTag() {
	case "!!null":
		c.buf.WriteString("null")
		return nil
	case "!!bool", "!!int", "!!float":
		if err := n.Decode(&v); err != nil {
			return &Error{Line: n.Line, Path: path, Msg: err.Error()}
		}
		if f, ok := v.(float64); ok && (math.IsInf(f, 0) || math.IsNaN(f)) {
			return &Error{Line: n.Line, Path: path, Msg: fmt.Sprintf("%s is not representable in JSON", n.Value)}
		}
	default:
		v = n.Value
	}
	js, err := json.Marshal(v)
	if err != nil {
		return &Error{Line: n.Line, Path: path, Msg: err.Error()}
	}
	c.buf.Write(js)
	return nil
}

// At returns the path and line of the innermost value that the JSON byte
// offset off falls in (a decoder's type error offset points just past, or
// into, the value it could not take).
func (d *Doc) At(off int64) (path string, line int) {
	best := -1
	for i, s := range d.spans {
		if int64(s.start) < off && off <= int64(s.end) && (best < 0 || s.start >= d.spans[best].start) {
			best = i
		}
	}
	if best < 0 {
		return "", d.Node.Line
	}
	return d.spans[best].path, d.spans[best].line
}

// Line returns the line of path: its key's line, or the line of the nearest
// enclosing field that the document has (a validator may name a field the
// user left out).
func (d *Doc) Line(path string) int {
	for {
		if l, ok := d.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return d.Node.Line
		}
		path = path[:i]
	}
}

// Value returns the node at path, or nil.
func (d *Doc) Value(path string) *yaml.Node { return d.nodes[path] }

// KeyParent returns the path of the mapping that has key at line (the first
// one, if a line has the same key twice).
func (d *Doc) KeyParent(line int, key string) (string, bool) {
	p, ok := d.keys[lineKey{line, key}]
	return p, ok
}

// PathAt returns the path of what starts on line: the single scalar there, or
// else the innermost value that holds everything starting there.
func (d *Doc) PathAt(line int) string {
	var on []string
	for _, s := range d.spans {
		if s.line == line {
			on = append(on, s.path)
		}
	}
	if len(on) == 0 {
		return ""
	}
	var scalars []string
	for _, p := range on {
		if n := d.nodes[p]; n != nil && n.Kind == yaml.ScalarNode {
			scalars = append(scalars, p)
		}
	}
	if len(scalars) == 1 {
		return scalars[0]
	}
	common := on[0]
	for _, p := range on[1:] {
		for common != "" && p != common && !strings.HasPrefix(p, common+".") && !strings.HasPrefix(p, common+"[") {
			i := strings.LastIndexAny(common, ".[")
			if i < 0 {
				common = ""
				break
			}
			common = common[:i]
		}
	}
	return common
}

// Child returns the value of key in mapping n (aliases followed), or nil.
func Child(n *yaml.Node, key string) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			v := n.Content[i+1]
			for v.Kind == yaml.AliasNode {
				v = v.Alias
			}
			return v
		}
	}
	return nil
}

// SyntaxLine splits a yaml.v3 parse error ("yaml: line N: message") into its
// line and message. The parser reports nothing more structured; an error
// without a line is placed on line 1. yaml.v3 adds one to the 0-based line of
// scanner errors but not of parser errors (the "did not find expected ..."
// family and a few "found ..." ones), so those are one line short.
func SyntaxLine(err error) (int, string) {
	msg := err.Error()
	rest, ok := strings.CutPrefix(msg, "yaml: line ")
	if !ok {
		return 1, strings.TrimPrefix(msg, "yaml: ")
	}
	num, text, ok := strings.Cut(rest, ": ")
	line, convErr := strconv.Atoi(num)
	if !ok || convErr != nil {
		return 1, strings.TrimPrefix(msg, "yaml: ")
	}
	if parserProblem(text) {
		line++
	}
	return line, text
}

func parserProblem(msg string) bool {
	switch msg {
	case "found duplicate %TAG directive", "found duplicate %YAML directive",
		"found incompatible YAML document", "found undefined tag handle":
		return true
	}
	return strings.HasPrefix(msg, "did not find expected ")
}
