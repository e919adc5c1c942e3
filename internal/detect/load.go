package detect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Pack is a loaded, validated rule pack.
type Pack struct {
	Rules []*Rule
	Lists map[string][]string

	signature string // of the directory it was loaded from (LoadDir), for Watch
}

// Rule returns the rule with id, or nil.
func (p *Pack) Rule(id string) *Rule {
	for _, r := range p.Rules {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// ListsDir is the folder of a pack holding named lists (YAML maps name → [items]).
const ListsDir = "lists"

// Load reads every *.yaml/*.yml rule under root in fsys (one rule per file;
// files under lists/ are named lists; folders named testdata or starting with
// "." or "_" are skipped), validates and compiles them. All problems are
// reported at once, each prefixed with its file name.
func Load(fsys fs.FS, root string) (*Pack, error) {
	if root == "" {
		root = "."
	}
	lists, err := loadLists(fsys, path.Join(root, ListsDir))
	if err != nil {
		return nil, err
	}
	var files []string
	err = fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			n := d.Name()
			if p != root && (n == ListsDir || n == "testdata" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_")) {
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot list rules in %s: %w", root, err)
	}
	return loadFiles(fsys, files, lists)
}

// LoadDir loads a pack from a directory on disk.
func LoadDir(dir string) (*Pack, error) {
	sig := dirSignature(dir)
	p, err := Load(os.DirFS(dir), ".")
	if err != nil {
		return nil, err
	}
	p.signature = sig
	return p, nil
}

// LoadPaths loads rules from directories and/or single files on disk. Each
// directory's lists/ (and a single file's sibling lists/) are merged.
func LoadPaths(paths []string) (*Pack, error) {
	var all Pack
	all.Lists = map[string][]string{}
	var errs []error
	seen := map[string]string{}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot read %s: %w", p, err))
			continue
		}
		var pk *Pack
		if st.IsDir() {
			pk, err = Load(os.DirFS(p), ".")
		} else {
			dir := path.Dir(p)
			var lists map[string][]string
			lists, err = loadLists(os.DirFS(dir), ListsDir)
			if err == nil {
				pk, err = loadFiles(os.DirFS(dir), []string{path.Base(p)}, lists)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		for k, v := range pk.Lists {
			all.Lists[k] = v
		}
		for _, r := range pk.Rules {
			if prev, dup := seen[r.ID]; dup {
				errs = append(errs, fmt.Errorf("%s: duplicate rule id %q (also in %s)", r.File, r.ID, prev))
				continue
			}
			seen[r.ID] = r.File
			all.Rules = append(all.Rules, r)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &all, nil
}

func loadLists(fsys fs.FS, dir string) (map[string][]string, error) {
	lists := map[string][]string{}
	ents, err := fs.ReadDir(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return lists, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read lists %s: %w", dir, err)
	}
	var errs []error
	for _, d := range ents {
		n := d.Name()
		if d.IsDir() || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			continue
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, n))
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot read list file %s: %w", n, err))
			continue
		}
		var m map[string][]string
		if err := yaml.Unmarshal(b, &m); err != nil {
			errs = append(errs, fmt.Errorf("%s/%s: cannot parse (want a map of name to list of strings): %w", dir, n, err))
			continue
		}
		for k, v := range m {
			if _, dup := lists[k]; dup {
				errs = append(errs, fmt.Errorf("%s/%s: list %q defined twice", dir, n, k))
			}
			lists[k] = v
		}
	}
	return lists, errors.Join(errs...)
}

func loadFiles(fsys fs.FS, files []string, lists map[string][]string) (*Pack, error) {
	env, err := sharedEnv()
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	p := &Pack{Lists: lists}
	var errs []error
	ids := map[string]string{}
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot read %s: %w", f, err))
			continue
		}
		r, err := parseRule(env, f, b, lists)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, indent(err)))
			continue
		}
		r.Source = b
		if prev, dup := ids[r.ID]; dup {
			errs = append(errs, fmt.Errorf("%s: duplicate rule id %q (also in %s)", f, r.ID, prev))
			continue
		}
		ids[r.ID] = f
		p.Rules = append(p.Rules, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("cannot load rules: %w", err)
	}
	return p, nil
}

// indent puts multi-error messages on their own indented lines.
func indent(err error) error {
	s := err.Error()
	if !strings.Contains(s, "\n") {
		return err
	}
	return errors.New("\n  " + strings.ReplaceAll(s, "\n", "\n  "))
}
