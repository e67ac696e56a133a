package engine

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	File      string      `xml:"file,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	TestCases []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Error     *junitFailure `xml:"error,omitempty"`
	Skipped   *struct{}     `xml:"skipped,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes one testsuite per scenario file and one testcase per probe.
// A file that did not load is a suite with one errored testcase.
func (r *Report) WriteJUnit(w io.Writer) error {
	out := junitSuites{Name: "kestrel scenarios (" + r.Mode + ")"}
	for _, f := range r.Files {
		s := junitSuite{Name: f.Scenario, File: f.Path}
		if s.Name == "" {
			s.Name = f.Path
		}
		if f.Err != nil {
			s.Errors++
			s.Tests++
			s.TestCases = append(s.TestCases, junitCase{Name: "load", ClassName: s.Name,
				Error: &junitFailure{Message: f.Err.Error(), Type: "load", Text: f.Err.Error()}})
		}
		for _, res := range f.Results {
			c := junitCase{Name: res.Probe.Name, ClassName: s.Name}
			s.Tests++
			switch res.Status {
			case Failed:
				s.Failures++
				var text strings.Builder
				writeFailure(&text, f, res)
				c.Failure = &junitFailure{
					Message: fmt.Sprintf("expected %s, observed %s", describeExpectation(res.Probe.Expect), describeObservation(res.Observed)),
					Type:    "mismatch",
					Text:    text.String(),
				}
			case Skipped:
				s.Skipped++
				c.Skipped = &struct{}{}
			}
			s.TestCases = append(s.TestCases, c)
		}
		out.Tests += s.Tests
		out.Failures += s.Failures + s.Errors
		out.Skipped += s.Skipped
		out.Suites = append(out.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
