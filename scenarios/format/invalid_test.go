package format

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from what the parser reports")

// Each file in testdata holds several mistakes; its .golden file lists every
// error the parser must report, one `file:line: path: message` a line, and
// nothing else. Files that are not scenarios are read as include files.
func TestInvalidFilesReportEveryError(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if IsScenario(data) || strings.Contains(string(data), "kind: Scenario") {
				var s *Scenario
				s, err = ParseFile(f)
				if s != nil {
					t.Errorf("a file with errors returned a scenario")
				}
			} else {
				var objs []Object
				objs, err = ParseObjectsFile(f)
				if objs != nil {
					t.Errorf("a file with errors returned %d objects", len(objs))
				}
			}
			var list Errors
			if !errors.As(err, &list) {
				t.Fatalf("error %v (%T) is not Errors", err, err)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s\ngot:\n%swant:\n%s", golden, got, want)
			}
		})
	}
}
