package image

import (
	"archive/tar"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// entry is one file of a tar stream built in memory order: a regular file copied
// from Source (or holding Data), a directory, or a symlink to Link.
type entry struct {
	Path   string // inside the image, without leading /
	Mode   int64
	Source string
	Data   []byte
	Link   string
	Dir    bool
}

// writeTar writes the entries, parents first, as root-owned files. Directories
// the entries need but do not list are added with mode 0755.
func writeTar(w io.Writer, entries []entry) error {
	seen := map[string]bool{}
	var all []entry
	for _, e := range entries {
		e.Path = strings.TrimPrefix(path.Clean("/"+e.Path), "/")
		for d := path.Dir(e.Path); d != "." && d != "/"; d = path.Dir(d) {
			if !seen[d] {
				seen[d] = true
				all = append(all, entry{Path: d, Dir: true, Mode: 0o755})
			}
		}
		if e.Dir {
			if seen[e.Path] {
				continue
			}
			seen[e.Path] = true
		}
		all = append(all, e)
	}
	// Parents sort before their children.
	sort.SliceStable(all, func(i, j int) bool { return all[i].Path < all[j].Path })
	tw := tar.NewWriter(w)
	for _, e := range all {
		h := &tar.Header{Name: e.Path, Mode: e.Mode, Uid: 0, Gid: 0, Format: tar.FormatPAX}
		switch {
		case e.Dir:
			h.Typeflag, h.Name = tar.TypeDir, e.Path+"/"
		case e.Link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Link
		default:
			h.Typeflag = tar.TypeReg
			if e.Source != "" {
				data, err := os.ReadFile(e.Source)
				if err != nil {
					return err
				}
				e.Data = data
			}
			h.Size = int64(len(e.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.Data); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}
