// Package detections holds mcpwatch's rule pack (one rule per YAML file,
// docs/rules.md) and its named lists (lists/*.yaml), embedded for the analyzer.
// Load it with detect.Load(detections.FS, ".").
package detections

import (
	"embed"
	"io/fs"
	"testing/fstest"
)

// FS holds every rule file and the lists/ folder.
//
//go:embed *.yaml lists/*.yaml
var FS embed.FS

// WithFiles is the shipped pack with some files added or replaced (path →
// content), as a rules_dir that edits the pack holds them: for tests and
// tools that try a pack variant without writing it to disk.
func WithFiles(files map[string][]byte) (fs.FS, error) {
	out := fstest.MapFS{}
	err := fs.WalkDir(FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(FS, p)
		out[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		return nil, err
	}
	for p, b := range files {
		out[p] = &fstest.MapFile{Data: b}
	}
	return out, nil
}
