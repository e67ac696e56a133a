package policy

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	sjson "sigs.k8s.io/json"

	"github.com/kestrelnet/kestrel/agent/yamldoc"
)

// fieldError is one problem in a document, named by its field path. Line is
// set when the decoder gave the position itself; otherwise the path's line
// in the document is used.
type fieldError struct {
	Path, Msg string
	Line      int
}

// maxTypeErrors bounds the decoding rounds of one document (see decodeStrict).
const maxTypeErrors = 50

// decodeStrict decodes the YAML document n into a new T with sigs.k8s.io/json
// in strict mode, the decoder Kubernetes uses for `kubectl --validate=strict`:
// it reports every unknown and every duplicate field by its path itself. A
// value of the wrong type stops it from reporting more than that one, so each
// such value is written as null (which leaves the field empty) and the
// document decoded again, until it decodes.
//
// It returns the value (possibly with emptied fields when there are errors),
// the converted document (for positions) and the paths it emptied.
func decodeStrict[T any](n *yaml.Node) (*T, *yamldoc.Doc, map[string]bool, []fieldError) {
	nulled := map[string]bool{}
	var errs []fieldError
	for round := 0; ; round++ {
		doc, err := yamldoc.Convert(n, nulled)
		if err != nil {
			return nil, nil, nulled, append(errs, yamlError(err))
		}
		out := new(T)
		strict, err := sjson.UnmarshalStrict(doc.JSON, out)
		if te, ok := err.(*json.UnmarshalTypeError); ok && round < maxTypeErrors {
			path, line := doc.At(te.Offset)
			if !nulled[path] {
				errs = append(errs, fieldError{Path: path, Line: line,
					Msg: fmt.Sprintf("expected %s, got %s", describeType(te.Type), te.Value)})
				nulled[path] = true
				continue
			}
		}
		if err != nil {
			// A value's own decoder (a Quantity, a time, ...) refused it;
			// the JSON decoder says neither where nor how to go on.
			return out, doc, nulled, append(errs, fieldError{Msg: err.Error(), Line: n.Line})
		}
		for _, e := range strict {
			path := ""
			if fe, ok := e.(sjson.FieldError); ok {
				path = fe.FieldPath()
			}
			// The message is `unknown field "PATH"` or `duplicate field "PATH"`.
			msg := strings.TrimSuffix(e.Error(), " "+strconv.Quote(path))
			errs = append(errs, fieldError{Path: path, Msg: msg})
		}
		return out, doc, nulled, errs
	}
}

func yamlError(err error) fieldError {
	if ye, ok := err.(*yamldoc.Error); ok {
		return fieldError{Path: ye.Path, Msg: ye.Msg, Line: ye.Line}
	}
	return fieldError{Msg: err.Error()}
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

// spoiled reports whether a validation error at path follows from a value the
// decoder could not take (emptied by decodeStrict): it is that value, inside
// it, or the field that holds it (whose "required" checks it fails).
func spoiled(path string, nulled map[string]bool) bool {
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

// pathError is an error about a field below the one being checked; Path is
// relative ("cidr", "except[1]", "port").
type pathError struct {
	Path, Msg string
}

func (e *pathError) Error() string { return e.Path + ": " + e.Msg }

func errAt(path, format string, args ...any) error {
	return &pathError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// checker collects every validation error of one document.
type checker struct {
	errs []fieldError
}

// fail records a problem at path (a rule read without a parent, as in the
// older array format, has paths that start with ".").
func (c *checker) fail(path, format string, args ...any) {
	path = strings.TrimPrefix(path, ".")
	c.errs = append(c.errs, fieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// failErr records err at path, or below it when err is a pathError.
func (c *checker) failErr(path string, err error) {
	path = strings.TrimPrefix(path, ".")
	if pe, ok := err.(*pathError); ok {
		c.errs = append(c.errs, fieldError{Path: joinPath(path, pe.Path), Msg: pe.Msg})
		return
	}
	c.errs = append(c.errs, fieldError{Path: path, Msg: err.Error()})
}

func joinPath(path, sub string) string {
	switch {
	case path == "":
		return sub
	case sub == "":
		return path
	case strings.HasPrefix(sub, "["):
		return path + sub
	}
	return path + "." + sub
}
