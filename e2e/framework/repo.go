package framework

import (
	"errors"
	"os"
	"path/filepath"
)

// RepoRoot is the checkout holding the running test: the nearest directory
// upwards with a go.mod that is not a nested module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "Makefile")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no checkout (go.mod and Makefile) above the working directory")
		}
		dir = parent
	}
}

// RepoPath is a path inside the checkout.
func RepoPath(rel string) string {
	root, err := RepoRoot()
	if err != nil {
		panic(err)
	}
	return filepath.Join(root, rel)
}
