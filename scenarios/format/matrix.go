package format

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// parseMatrix reads the reachability table: a header line "-" followed by the
// destination pods, then one row per source pod of "." (connected) or "X" (blocked).
func (d *decoder) parseMatrix(n *yaml.Node, r *Reachability, path string) error {
	var expect *yaml.Node
	for i := 0; i < len(n.Content); i += 2 {
		if n.Content[i].Value == "expect" {
			expect = n.Content[i+1]
		}
	}
	if expect == nil {
		return d.errorf(n, path, "reachability needs expect (the table)")
	}
	line := func(i int) *yaml.Node {
		l := expect.Line
		if expect.Style == yaml.LiteralStyle || expect.Style == yaml.FoldedStyle {
			l += 1 + i
		}
		return &yaml.Node{Line: l}
	}
	path = joinPath(path, "expect")
	r.Table = map[string]map[string]bool{}
	for i, text := range strings.Split(r.Expect, "\n") {
		cells := strings.Fields(text)
		if len(cells) == 0 {
			continue
		}
		if r.Header == nil {
			if cells[0] != "-" || len(cells) < 2 {
				return d.errorf(line(i), path, `the first line is "-" followed by the destination pods`)
			}
			r.Header = cells[1:]
			if dup := firstDuplicate(r.Header); dup != "" {
				return d.errorf(line(i), path, "pod %q appears twice in the header", dup)
			}
			continue
		}
		from := cells[0]
		if _, dup := r.Table[from]; dup {
			return d.errorf(line(i), path, "row %q appears twice", from)
		}
		if len(cells)-1 != len(r.Header) {
			return d.errorf(line(i), path, "row %q has %d cells, the header has %d pods", from, len(cells)-1, len(r.Header))
		}
		row := map[string]bool{}
		for j, c := range cells[1:] {
			switch c {
			case ".":
				row[r.Header[j]] = true
			case "X", "x":
				row[r.Header[j]] = false
			default:
				return d.errorf(line(i), path, "row %q, column %q: %q is neither . (connected) nor X (blocked)", from, r.Header[j], c)
			}
		}
		r.Table[from] = row
		r.Rows = append(r.Rows, from)
	}
	if len(r.Rows) == 0 {
		return d.errorf(expect, path, "the table has no rows")
	}
	if len(r.Pods) > 0 {
		for _, list := range [][]string{r.Header, r.Rows} {
			if !sameSet(list, r.Pods) {
				return d.errorf(expect, path, "the table's pods %v differ from pods %v", list, r.Pods)
			}
		}
	}
	return nil
}

func firstDuplicate(list []string) string {
	seen := map[string]bool{}
	for _, s := range list {
		if seen[s] {
			return s
		}
		seen[s] = true
	}
	return ""
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	in := map[string]bool{}
	for _, s := range a {
		in[s] = true
	}
	for _, s := range b {
		if !in[s] {
			return false
		}
	}
	return true
}
