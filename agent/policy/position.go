package policy

import (
	"fmt"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// leadingPath matches the field path an error message starts with, e.g.
// "spec.ingress[0].fromEndpoints[1].matchLabel: unknown field".
var leadingPath = regexp.MustCompile(`^((?:[A-Za-z_][\w-]*|\[\d+\])(?:\.[\w./-]+|\[\d+\])*): `)

var pathSegment = regexp.MustCompile(`[^.\[\]]+|\[(\d+)\]`)

// positioned prefixes err with file:line, the line being that of the field the
// error's path names in the document (the document's first line if the path
// cannot be followed).
func positioned(src Source, doc *yaml.Node, err error) error {
	line := src.Line
	if m := leadingPath.FindStringSubmatch(err.Error()); m != nil {
		if l := fieldLine(doc, m[1]); l > 0 {
			line = l
		}
	}
	return fmt.Errorf("%s:%d: %w", src.File, line, err)
}

// fieldLine follows path through the YAML tree and returns the line of the
// deepest node it reaches; a mapping key's own line is used for the last step,
// so an unknown field points at itself.
func fieldLine(n *yaml.Node, path string) int {
	line := n.Line
	for _, seg := range pathSegment.FindAllStringSubmatch(path, -1) {
		switch {
		case seg[1] != "" && n.Kind == yaml.SequenceNode:
			i, _ := strconv.Atoi(seg[1])
			if i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
		case seg[1] == "" && n.Kind == yaml.MappingNode:
			next := (*yaml.Node)(nil)
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == seg[0] {
					line = n.Content[i].Line
					next = n.Content[i+1]
					break
				}
			}
			if next == nil {
				return line
			}
			n = next
			continue
		default:
			return line
		}
		line = n.Line
	}
	return line
}
