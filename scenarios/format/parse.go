package format

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/kestrelnet/kestrel/agent/yamldoc"
)

// ParseFile reads a scenario file and the files it includes. Any error is
// Errors, naming every problem found.
func ParseFile(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	c := &errs{file: path}
	for i, inc := range s.Spec.Include {
		objs, err := ParseObjectsFile(filepath.Join(filepath.Dir(path), inc))
		if err != nil {
			if list, ok := err.(Errors); ok {
				c.list = append(c.list, list...)
			} else {
				c.at(s.includeLine(i), fmt.Sprintf("spec.include[%d]", i), "%v", err)
			}
			continue
		}
		s.Spec.Objects = append(s.Spec.Objects, objs...)
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return s, nil
}

// Parse decodes one scenario document strictly and validates it, reporting
// every problem (Errors). Included files are not read (ParseFile does that).
func Parse(file string, data []byte) (*Scenario, error) {
	docs, index, err := documents(file, data)
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 {
		return nil, Errors{{File: file, Line: 1, Msg: fmt.Sprintf("a scenario file holds exactly one document, found %d", len(docs))}}
	}
	doc, err := yamldoc.Convert(docs[0], nil)
	if err != nil {
		return nil, Errors{asError(file, err)}
	}
	c := &errs{file: file}
	s := &Scenario{File: file}
	spoiled := decodeKnown(c, data, index[0], doc, s)
	decoded := len(c.list)
	v := &validator{errs: c, doc: doc}
	v.scenario(s)
	// A value the decoder refused is left empty, and validation would then
	// also call it missing: keep only the decoder's word on those lines.
	c.list = append(c.list[:decoded], dropLines(c.list[decoded:], spoiled)...)
	if err := c.err(); err != nil {
		return nil, err
	}
	s.doc = doc
	return s, nil
}

// ParseObjectsFile reads a file of Kubernetes objects (multi-document YAML).
func ParseObjectsFile(path string) ([]Object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	docs, _, err := documents(path, data)
	if err != nil {
		return nil, err
	}
	c := &errs{file: path}
	var objs []Object
	for _, n := range docs {
		doc, err := yamldoc.Convert(n, nil)
		if err != nil {
			c.list = append(c.list, asError(path, err))
			continue
		}
		v := &validator{errs: c, doc: doc}
		if o, ok := v.object(""); ok {
			objs = append(objs, o)
		}
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return objs, nil
}

// IsScenario reports whether data's first document says kind: Scenario, so that a
// directory walk can pass over files that only hold included objects. A file
// whose first document does not parse counts as a scenario: the walk then
// reports its errors instead of passing over it silently.
func IsScenario(data []byte) bool {
	var head struct {
		Kind string `yaml:"kind"`
	}
	err := yaml.Unmarshal(data, &head)
	var te *yaml.TypeError
	if err != nil && !errors.As(err, &te) {
		return true
	}
	return head.Kind == Kind
}

func asError(file string, err error) *Error {
	if ye, ok := err.(*yamldoc.Error); ok {
		msg := ye.Msg
		if ye.Path != "" {
			msg = ye.Path + ": " + msg
		}
		return &Error{File: file, Line: ye.Line, Msg: msg}
	}
	return &Error{File: file, Line: 1, Msg: err.Error()}
}

func dropLines(list Errors, lines map[int]bool) Errors {
	var out Errors
	for _, e := range list {
		if !lines[e.Line] {
			out = append(out, e)
		}
	}
	return out
}
