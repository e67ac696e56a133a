package policy

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/invalid/*.golden from what the parser reports")

// Each file in testdata/invalid holds several mistakes; its .golden file lists
// every error the parser must report, one `file:line: path: message` a line,
// and nothing else. No objects come back from a file with any error.
func TestInvalidFilesReportEveryError(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".golden") {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			objs, err := ParseFile(f)
			if err == nil || objs != nil {
				t.Fatalf("ParseFile(%s) = %d objects, %v; want no objects and errors", f, len(objs), err)
			}
			var list Errors
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not Errors", err)
			}
			got := err.Error() + "\n"
			golden := f + ".golden"
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
			if len(list) < 2 {
				t.Errorf("%s reports %d errors; each fixture holds several", f, len(list))
			}
		})
	}
	if n == 0 {
		t.Fatal("no fixtures in testdata/invalid")
	}
}
