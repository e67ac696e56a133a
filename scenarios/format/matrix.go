package format

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// matrix reads the reachability table at path: a header line "-" followed by
// the destination pods, then one row per source pod of "." (connected) or "X"
// (blocked). Each line's mistakes are reported at that line.
func (v *validator) matrix(r *Reachability, path string) {
	expect := v.doc.Value(path + ".expect")
	if expect == nil {
		v.at(r.Line, path, "reachability needs expect (the table)")
		return
	}
	line := func(i int) int {
		l := expect.Line
		if expect.Style == yaml.LiteralStyle || expect.Style == yaml.FoldedStyle {
			l += 1 + i
		}
		return l
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
				v.at(line(i), path, `the first line is "-" followed by the destination pods`)
				return
			}
			r.Header = cells[1:]
			if dup := firstDuplicate(r.Header); dup != "" {
				v.at(line(i), path, "pod %q appears twice in the header", dup)
			}
			continue
		}
		from := cells[0]
		if _, dup := r.Table[from]; dup {
			v.at(line(i), path, "row %q appears twice", from)
			continue
		}
		if len(cells)-1 != len(r.Header) {
			v.at(line(i), path, "row %q has %d cells, the header has %d pods", from, len(cells)-1, len(r.Header))
			continue
		}
		row := map[string]bool{}
		for j, c := range cells[1:] {
			switch c {
			case ".":
				row[r.Header[j]] = true
			case "X", "x":
				row[r.Header[j]] = false
			default:
				v.at(line(i), path, "row %q, column %q: %q is neither . (connected) nor X (blocked)", from, r.Header[j], c)
			}
		}
		r.Table[from] = row
		r.Rows = append(r.Rows, from)
	}
	if len(r.Rows) == 0 {
		v.at(expect.Line, path, "the table has no rows")
		return
	}
	if len(r.Pods) > 0 {
		for _, list := range [][]string{r.Header, r.Rows} {
			if !sameSet(list, r.Pods) {
				v.at(expect.Line, path, "the table's pods %v differ from pods %v", list, r.Pods)
				return
			}
		}
	}
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
