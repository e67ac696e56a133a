package format

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is a problem in a scenario file, located at File:Line.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// decoder turns yaml.Nodes into the format's Go types strictly: every mapping key
// must name a field, every scalar must have the field's type, and each error
// carries the file, line and field path.
type decoder struct {
	file string
}

// nodeDecoder is implemented by types whose YAML has more than one shape
// ("80/TCP" or a mapping, a pod name or a mapping, ...).
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string) error
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	return &Error{File: d.file, Line: n.Line, Msg: msg}
}

var (
	nodeDecoderType = reflect.TypeOf((*nodeDecoder)(nil)).Elem()
	yamlNodeType    = reflect.TypeOf(yaml.Node{})
)

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.AliasNode {
		return d.decode(n.Alias, v, path)
	}
	if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
		return v.Addr().Interface().(nodeDecoder).decodeNode(d, n, path)
	}
	if v.Type() == yamlNodeType {
		v.Set(reflect.ValueOf(*n))
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			return nil
		}
		p := reflect.New(v.Type().Elem())
		if err := d.decode(n, p.Elem(), path); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case reflect.Struct:
		return d.decodeStruct(n, v, path)
	case reflect.Slice:
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return d.errorf(n, path, "expected a list, got %s", describe(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			if err := d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Map:
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			return d.errorf(n, path, "expected a mapping, got %s", describe(n))
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		for i := 0; i < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return d.errorf(k, path, "mapping keys must be plain strings")
			}
			ev := reflect.New(v.Type().Elem()).Elem()
			if err := d.decode(val, ev, path+"."+k.Value); err != nil {
				return err
			}
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), ev)
		}
		v.Set(m)
		return nil
	case reflect.String:
		if n.Kind != yaml.ScalarNode || isNull(n) {
			return d.errorf(n, path, "expected a string, got %s", describe(n))
		}
		v.SetString(n.Value)
		return nil
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			return d.errorf(n, path, "expected true or false, got %s", describe(n))
		}
		v.SetBool(b)
		return nil
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint8, reflect.Uint16, reflect.Uint32:
		bits := v.Type().Bits()
		if v.Kind() >= reflect.Uint8 {
			u, err := strconv.ParseUint(n.Value, 10, bits)
			if n.Kind != yaml.ScalarNode || err != nil {
				return d.errorf(n, path, "expected a number from 0 to %d, got %s", uint64(1)<<bits-1, describe(n))
			}
			v.SetUint(u)
			return nil
		}
		i, err := strconv.ParseInt(n.Value, 10, bits)
		if n.Kind != yaml.ScalarNode || err != nil {
			return d.errorf(n, path, "expected a number, got %s", describe(n))
		}
		v.SetInt(i)
		return nil
	}
	return d.errorf(n, path, "internal: cannot decode into %s", v.Type())
}

// decodeStruct maps keys to fields by their yaml tag. A field named Line (no tag)
// receives the mapping's line, for later validation messages.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.errorf(n, path, "expected a mapping, got %s", describe(n))
	}
	t := v.Type()
	fields := map[string]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		fields[tag] = i
		names = append(names, tag)
	}
	if f, ok := t.FieldByName("Line"); ok && f.Type.Kind() == reflect.Int {
		v.FieldByIndex(f.Index).SetInt(int64(n.Line))
	}
	seen := map[string]bool{}
	for i := 0; i < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		idx, ok := fields[k.Value]
		if !ok {
			return d.errorf(k, path, "unknown field %q (known: %s)", k.Value, strings.Join(names, ", "))
		}
		if seen[k.Value] {
			return d.errorf(k, path, "field %q given twice", k.Value)
		}
		seen[k.Value] = true
		if err := d.decode(val, v.Field(idx), joinPath(path, k.Value)); err != nil {
			return err
		}
	}
	return nil
}

func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "an unexpected node"
}
