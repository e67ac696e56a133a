package format

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kestrelnet/kestrel/agent/yamldoc"
)

// Error is a problem in a scenario file, located at File:Line. Msg starts with
// the field path when there is one.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Errors is every problem found in a file, in line order, one per line.
type Errors []*Error

func (e Errors) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "\n")
}

// errs collects the problems of one file.
type errs struct {
	file string
	list Errors
}

func (c *errs) at(line int, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	c.list = append(c.list, &Error{File: c.file, Line: line, Msg: msg})
}

func (c *errs) err() error {
	if len(c.list) == 0 {
		return nil
	}
	sort.SliceStable(c.list, func(i, j int) bool { return c.list[i].Line < c.list[j].Line })
	return c.list
}

// documents splits data into its non-empty YAML documents, and says which
// document of the stream each is (empty ones count). A syntax error ends the
// file: the parser cannot go on past it.
func documents(file string, data []byte) ([]*yaml.Node, []int, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	var index []int
	for i := 0; ; i++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, index, nil
		}
		if err != nil {
			line, msg := yamldoc.SyntaxLine(err)
			return nil, nil, Errors{{File: file, Line: line, Msg: msg}}
		}
		if len(doc.Content) == 0 || isNull(doc.Content[0]) {
			continue
		}
		docs = append(docs, doc.Content[0])
		index = append(index, i)
	}
}

// decodeKnown decodes the idx-th document (counting empty ones) of data into out with yaml.v3's
// KnownFields, so that the decoder itself refuses every unknown field (and
// every value of the wrong type, and every key given twice) and goes on to
// report the rest. yaml.v3 reports each as "line N: message"; the document's
// node tree gives the field path of that line.
//
// It returns the lines of values the decoder could not take (left empty), on
// which validation would only repeat the problem.
func decodeKnown(c *errs, data []byte, idx int, doc *yamldoc.Doc, out any) map[int]bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var err error
	for i := 0; i <= idx; i++ {
		var skip yaml.Node
		if i < idx {
			err = dec.Decode(&skip)
		} else {
			err = dec.Decode(out)
		}
	}
	spoiled := map[int]bool{}
	if err == nil {
		return spoiled
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		c.at(doc.Node.Line, "", "%v", err)
		return spoiled
	}
	for _, e := range te.Errors {
		line, msg := splitLine(e)
		path, text, field := locate(doc, line, msg)
		c.at(line, path, "%s", text)
		if !field {
			spoiled[line] = true
		}
	}
	return spoiled
}

// splitLine splits yaml.v3's "line N: message".
func splitLine(e string) (int, string) {
	rest, ok := strings.CutPrefix(e, "line ")
	if ok {
		if num, msg, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				return n, msg
			}
		}
	}
	return 0, e
}

// locate finds the field path of a decoder error and words it for users:
// yaml.v3 names Go types ("field colour not found in type format.podFields").
// field says the error is about a key (unknown or repeated), not a value.
func locate(doc *yamldoc.Doc, line int, msg string) (path, text string, field bool) {
	if rest, ok := strings.CutPrefix(msg, "field "); ok {
		for _, tail := range []string{" not found in type ", " already set in type "} {
			if key, _, ok := strings.Cut(rest, tail); ok {
				path, _ := doc.KeyParent(line, key)
				if tail == " not found in type " {
					return path, fmt.Sprintf("unknown field %q", key), true
				}
				return path, fmt.Sprintf("field %q given twice", key), true
			}
		}
	}
	if rest, ok := strings.CutPrefix(msg, "mapping key "); ok {
		if key, _, ok := strings.Cut(rest, " already defined"); ok {
			if k, err := strconv.Unquote(key); err == nil {
				path, _ := doc.KeyParent(line, k)
				return path, fmt.Sprintf("field %q given twice", k), true
			}
		}
	}
	return doc.PathAt(line), msg, false
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}
