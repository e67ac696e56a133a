package observe

import (
	"strings"
)

// selectorMatches applies a Kubernetes-style label selector ("k8s:app=a",
// "app in (a,b)", "!app", "app!=b", comma meaning and) to a flow's labels
// (source:key=value). A key without a source, or with "any:", matches the
// key from any source. An unparsable selector matches nothing.
func selectorMatches(sel string, labels []string) bool {
	reqs, ok := splitRequirements(sel)
	if !ok {
		return false
	}
	for _, r := range reqs {
		if !requirementMatches(strings.TrimSpace(r), labels) {
			return false
		}
	}
	return true
}

// splitRequirements splits on commas outside parentheses.
func splitRequirements(sel string) ([]string, bool) {
	var out []string
	depth, start := 0, 0
	for i, c := range sel {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return nil, false
			}
		case ',':
			if depth == 0 {
				out = append(out, sel[start:i])
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, false
	}
	return append(out, sel[start:]), true
}

func requirementMatches(r string, labels []string) bool {
	if r == "" {
		return false
	}
	if strings.HasPrefix(r, "!") {
		_, found := lookup(strings.TrimSpace(r[1:]), labels)
		return !found
	}
	for _, op := range []string{"!=", "==", "="} {
		if k, v, ok := strings.Cut(r, op); ok {
			got, found := lookup(strings.TrimSpace(k), labels)
			if op == "!=" {
				return !found || !anyOf(got, func(g string) bool { return g == strings.TrimSpace(v) })
			}
			return anyOf(got, func(g string) bool { return g == strings.TrimSpace(v) })
		}
	}
	for _, op := range []string{" notin ", " in "} {
		if k, set, ok := strings.Cut(r, op); ok {
			set = strings.TrimSpace(set)
			if !strings.HasPrefix(set, "(") || !strings.HasSuffix(set, ")") {
				return false
			}
			vals := strings.Split(set[1:len(set)-1], ",")
			got, found := lookup(strings.TrimSpace(k), labels)
			in := anyOf(vals, func(v string) bool {
				return anyOf(got, func(g string) bool { return g == strings.TrimSpace(v) })
			})
			if op == " notin " {
				return !found || !in
			}
			return in
		}
	}
	_, found := lookup(r, labels)
	return found
}

// lookup returns the values key has among labels.
func lookup(key string, labels []string) ([]string, bool) {
	source, name, hasSource := strings.Cut(key, ":")
	if !hasSource || source == "any" {
		if !hasSource {
			name = key
		}
		source = ""
	}
	var vals []string
	for _, l := range labels {
		ls, rest, ok := strings.Cut(l, ":")
		if !ok || (source != "" && ls != source) {
			continue
		}
		k, v, _ := strings.Cut(rest, "=")
		if k == name {
			vals = append(vals, v)
		}
	}
	return vals, len(vals) > 0
}
