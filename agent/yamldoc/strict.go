package yamldoc

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	sjson "sigs.k8s.io/json"
)

// maxTypeErrors bounds the decoding rounds of one document (see Strict).
const maxTypeErrors = 50

// Strict decodes the YAML document n into a new T with sigs.k8s.io/json in
// strict mode, the decoder Kubernetes uses for `kubectl --validate=strict`:
// it reports every unknown and every duplicate field by its path itself. A
// value of the wrong type stops it from reporting more than that one, so each
// such value is written as null (which leaves the field empty) and the
// document decoded again, until it decodes.
//
// It returns the value (nil only if n cannot be converted; with emptied fields
// when there are errors), the converted document (for positions of later
// errors), the paths it emptied and every error, each with its line.
func Strict[T any](n *yaml.Node) (*T, *Doc, map[string]bool, []*Error) {
	nulled := map[string]bool{}
	var errs []*Error
	for round := 0; ; round++ {
		doc, err := Convert(n, nulled)
		if err != nil {
			return nil, nil, nulled, append(errs, asError(err, n.Line))
		}
		out := new(T)
		strict, err := sjson.UnmarshalStrict(doc.JSON, out)
		if te, ok := err.(*json.UnmarshalTypeError); ok && round < maxTypeErrors {
			path, line := doc.At(te.Offset)
			if !nulled[path] {
				errs = append(errs, &Error{Path: path, Line: line,
					Msg: fmt.Sprintf("expected %s, got %s", describeType(te.Type), te.Value)})
				nulled[path] = true
				continue
			}
		}
		if err != nil {
			// A value's own decoder (a Quantity, a time, ...) refused it;
			// the JSON decoder says neither where nor how to go on.
			return out, doc, nulled, append(errs, &Error{Msg: err.Error(), Line: n.Line})
		}
		for _, e := range strict {
			path := ""
			if fe, ok := e.(sjson.FieldError); ok {
				path = fe.FieldPath()
			}
			// The message is `unknown field "PATH"` or `duplicate field "PATH"`.
			msg := strings.TrimSuffix(e.Error(), " "+strconv.Quote(path))
			errs = append(errs, &Error{Path: path, Msg: msg, Line: doc.Line(path)})
		}
		return out, doc, nulled, errs
	}
}

func asError(err error, line int) *Error {
	if ye, ok := err.(*Error); ok {
		return ye
	}
	return &Error{Msg: err.Error(), Line: line}
}

// describeType names what a Go type accepts, in the user's terms.
func describeType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

// Spoiled reports whether a later (validation) error at path follows from a
// value Strict emptied: it is that value, inside it, or the field that holds
// it (whose "required" checks it then fails).
func Spoiled(path string, nulled map[string]bool) bool {
	for p := range nulled {
		if path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[") {
			return true
		}
		if i := strings.LastIndexAny(p, ".["); i >= 0 && path == p[:i] || i < 0 && path == "" {
			return true
		}
	}
	return false
}
