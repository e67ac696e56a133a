package yamldoc

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func parse(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(text), &n); err != nil {
		t.Fatal(err)
	}
	return &n
}

const sample = `a: 1
b:
  - x: "s"
    y: [true, null, 2.5]
  - {x: t}
c: &anchor {d: v}
e: *anchor
`

func TestConvertKeepsEveryValuesPathAndLine(t *testing.T) {
	d, err := Convert(parse(t, sample), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":1,"b":[{"x":"s","y":[true,null,2.5]},{"x":"t"}],"c":{"d":"v"},"e":{"d":"v"}}`
	if string(d.JSON) != want {
		t.Errorf("JSON %s\nwant %s", d.JSON, want)
	}
	for path, line := range map[string]int{"a": 1, "b[0].y": 4, "b[1]": 5, "b[1].x": 5, "e.d": 6, "b[0].nothere": 3, "zz": 1} {
		if got := d.Line(path); got != line {
			t.Errorf("Line(%s) = %d, want %d", path, got, line)
		}
	}
	// The offset of "2.5"'s end is inside b[0].y[2].
	off := int64(strings.Index(string(d.JSON), "2.5") + 3)
	if path, line := d.At(off); path != "b[0].y[2]" || line != 4 {
		t.Errorf("At(%d) = %s, %d", off, path, line)
	}
	if p, ok := d.KeyParent(5, "x"); !ok || p != "b[1]" {
		t.Errorf("KeyParent(5, x) = %q, %v", p, ok)
	}
	if p := d.PathAt(4); p != "b[0].y" {
		t.Errorf("PathAt(4) = %q", p)
	}
}

func TestConvertWritesNullForTheGivenPaths(t *testing.T) {
	d, err := Convert(parse(t, sample), map[string]bool{"b[0]": true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(d.JSON), `{"a":1,"b":[null,{"x":"t"}]`) {
		t.Errorf("JSON %s: b[0] should be null and b[1] keep its index", d.JSON)
	}
}

func TestConvertAppliesMergeKeys(t *testing.T) {
	d, err := Convert(parse(t, "base: &b {x: 1, y: 2}\nmore: &m {z: 3}\nc:\n  <<: [*b, *m]\n  y: 9\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"base":{"x":1,"y":2},"more":{"z":3},"c":{"y":9,"x":1,"z":3}}`
	if string(d.JSON) != want {
		t.Errorf("JSON %s\nwant %s", d.JSON, want)
	}
}

func TestConvertRefusesWhatJSONCannotSay(t *testing.T) {
	for text, want := range map[string]string{
		"a:\n  <<: 1\n": "line 2: a: a merge key (<<) takes a mapping",
		"a: .nan\n":     "line 1: a: .nan is not representable",
		"? [x]\n: 1\n":  "line 1: a mapping key must be a plain scalar",
	} {
		_, err := Convert(parse(t, text), nil)
		var ye *Error
		if !errors.As(err, &ye) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", text, err, want)
		}
	}
}

type target struct {
	Name  string            `json:"name"`
	Ports []int32           `json:"ports"`
	Sel   map[string]string `json:"sel"`
}

func TestStrictReportsEveryUnknownDuplicateAndMistypedField(t *testing.T) {
	n := parse(t, "name: [x]\nports: [80, http, 443, {a: 1}]\nsel: {a: b}\nextra: 1\nname: again\n")
	out, _, nulled, errs := Strict[target](n)
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		"line 1: name: expected a string, got array",
		"line 2: ports[1]: expected an integer, got string",
		"line 2: ports[3]: expected an integer, got object",
		"line 4: extra: unknown field",
		"line 5: name: duplicate field",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if out == nil || len(out.Ports) != 4 || out.Ports[2] != 443 || out.Sel["a"] != "b" {
		t.Errorf("decoded %+v: the good values must still be read", out)
	}
	if !Spoiled("ports", nulled) || !Spoiled("ports[1]", nulled) || Spoiled("sel", nulled) {
		t.Errorf("Spoiled misjudges with nulled %v", nulled)
	}
}

func TestSyntaxLineCorrectsParserErrors(t *testing.T) {
	var n yaml.Node
	err := yaml.Unmarshal([]byte("a: 1\nb: {c: 2\nd: 3\n"), &n)
	if line, msg := SyntaxLine(err); line != 2 || !strings.HasPrefix(msg, "did not find expected") {
		t.Errorf("SyntaxLine = %d, %q (error %v); the flow mapping opens on line 2", line, msg, err)
	}
	err = yaml.Unmarshal([]byte("a: b\n  c: d\n"), &n)
	if line, _ := SyntaxLine(err); line != 2 {
		t.Errorf("scanner error line %d, want 2 (error %v)", line, err)
	}
}
