package policy

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kestrelnet/kestrel/agent/yamldoc"
)

// fieldError is one problem in a document, named by its field path. Line is
// set when the decoder gave the position itself; otherwise the path's line
// in the document is used.
type fieldError struct {
	Path, Msg string
	Line      int
}

// decodeStrict decodes n with yamldoc.Strict (sigs.k8s.io/json strict mode).
func decodeStrict[T any](n *yaml.Node) (*T, *yamldoc.Doc, map[string]bool, []fieldError) {
	out, doc, nulled, errs := yamldoc.Strict[T](n)
	fes := make([]fieldError, len(errs))
	for i, e := range errs {
		fes[i] = fieldError{Path: e.Path, Msg: e.Msg, Line: e.Line}
	}
	return out, doc, nulled, fes
}

func yamlError(err error) fieldError {
	if ye, ok := err.(*yamldoc.Error); ok {
		return fieldError{Path: ye.Path, Msg: ye.Msg, Line: ye.Line}
	}
	return fieldError{Msg: err.Error()}
}

func spoiled(path string, nulled map[string]bool) bool { return yamldoc.Spoiled(path, nulled) }

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
