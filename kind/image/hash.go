package image

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// hasher names every input of an image: when any changes, so does the tag, and the
// image is rebuilt; when none does, the existing image is reused.
type hasher struct{ h io.Writer }

func newHasher() (*hasher, func() string) {
	h := sha256.New()
	return &hasher{h}, func() string { return hex.EncodeToString(h.Sum(nil))[:16] }
}

func (x *hasher) str(name, v string) { fmt.Fprintf(x.h, "%s=%q\n", name, v) }

// file hashes a file's content under a name.
func (x *hasher) file(name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(x.h, "file %s\n", name)
	_, err = io.Copy(x.h, f)
	return err
}

// tree hashes every file below dir (relative names, contents), in a stable order.
func (x *hasher) tree(dir string) error {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, p := range files {
		rel, _ := filepath.Rel(dir, p)
		if err := x.file(rel, p); err != nil {
			return err
		}
	}
	return nil
}
