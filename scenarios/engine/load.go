package engine

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kestrelnet/kestrel/scenarios/format"
)

// File is one scenario file: its plan, or why it could not be read.
type File struct {
	Path string
	Plan *Plan
	Err  error // parse or expansion error, with file:line
}

// Load reads scenario files and directories (recursively, *.yaml, sorted). In a
// directory, YAML files that are not `kind: Scenario` are passed over: they hold
// objects that scenarios include. A path that does not exist is an error; a file
// that does not parse is returned with its Err set.
func Load(paths ...string) ([]File, error) {
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".yaml") {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if format.IsScenario(data) {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	out := make([]File, 0, len(files))
	for _, path := range files {
		f := File{Path: path}
		s, err := format.ParseFile(path)
		if err == nil {
			f.Plan, err = Expand(s)
		}
		f.Err = err
		out = append(out, f)
	}
	return out, nil
}
