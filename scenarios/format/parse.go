package format

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// ParseFile reads a scenario file and the files it includes.
func ParseFile(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	for i, inc := range s.Spec.Include {
		objs, err := ParseObjectsFile(filepath.Join(filepath.Dir(path), inc))
		if err != nil {
			return nil, fmt.Errorf("%s: spec.include[%d]: %w", path, i, err)
		}
		s.Spec.Objects = append(s.Spec.Objects, objs...)
	}
	return s, nil
}

// Parse decodes one scenario document strictly and validates it. Included files
// are not read (ParseFile does that).
func Parse(file string, data []byte) (*Scenario, error) {
	docs, err := documents(file, data)
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 {
		return nil, &Error{File: file, Line: 1, Msg: fmt.Sprintf("a scenario file holds exactly one document, found %d", len(docs))}
	}
	d := &decoder{file: file}
	s := &Scenario{File: file}
	if err := d.decodeStruct(docs[0], valueOf(s), ""); err != nil {
		return nil, err
	}
	if err := d.validate(docs[0], s); err != nil {
		return nil, err
	}
	return s, nil
}

// ParseObjectsFile reads a file of Kubernetes objects (multi-document YAML).
func ParseObjectsFile(path string) ([]Object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	docs, err := documents(path, data)
	if err != nil {
		return nil, err
	}
	d := &decoder{file: path}
	var objs []Object
	for _, n := range docs {
		var o Object
		if err := o.decodeNode(d, n, ""); err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// IsScenario reports whether data's first document says kind: Scenario, so that a
// directory walk can pass over files that only hold included objects.
func IsScenario(data []byte) bool {
	var head struct {
		Kind string `yaml:"kind"`
	}
	return yaml.Unmarshal(data, &head) == nil && head.Kind == Kind
}

// documents splits data into its non-empty YAML documents (mapping nodes).
func documents(file string, data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
				line, _ := strconv.Atoi(m[1])
				return nil, &Error{File: file, Line: line, Msg: m[2]}
			}
			return nil, &Error{File: file, Line: 1, Msg: err.Error()}
		}
		if len(doc.Content) == 0 || isNull(doc.Content[0]) {
			continue
		}
		docs = append(docs, doc.Content[0])
	}
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func valueOf(ptr any) reflect.Value { return reflect.ValueOf(ptr).Elem() }
