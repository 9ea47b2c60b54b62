package ghasim

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// uses runs a `uses:` step: a built-in emulation or an Options.Actions entry.
// A failure of the action itself wraps ErrStepFailed.
func (jc *jobRun) uses(ctx context.Context, s Step, environ []string, sr *StepResult) error {
	with, err := jc.interpolateMap(s.With)
	if err != nil {
		return fmt.Errorf("with: %w", err)
	}
	name, _, _ := strings.Cut(s.Uses, "@")
	sc := &StepContext{Workspace: jc.ws, Temp: jc.temp, Env: environ, Outputs: sr.Outputs, run: jc.rs}
	var f ActionFunc
	if custom, ok := jc.rs.opts.Actions[name]; ok {
		f = custom
	} else {
		switch name {
		case "actions/checkout":
			f = checkout
		case "actions/setup-go":
			f = func(context.Context, *StepContext, map[string]string) error { return nil } // the host's go is used
		case "actions/upload-artifact":
			f = uploadArtifact
		case "actions/download-artifact":
			f = downloadArtifact
		default:
			return fmt.Errorf("action %s is not emulated (add it to Options.Actions)", name)
		}
	}
	if err := f(ctx, sc, with); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrStepFailed, name, err)
	}
	return nil
}

// checkout clones Options.Remote at `ref` (default the run's branch) into the
// workspace (or `path` under it), with origin pointing at the remote so `git push`
// reaches it, as actions/checkout leaves it.
func checkout(ctx context.Context, sc *StepContext, with map[string]string) error {
	remote := sc.run.opts.Remote
	if remote == "" {
		return errors.New("no Options.Remote to check out")
	}
	ref := with["ref"]
	if ref == "" {
		ref = sc.run.opts.Ref
	}
	dst := sc.Workspace
	if p := with["path"]; p != "" {
		var err error
		if dst, err = confined(sc.Workspace, p); err != nil {
			return err
		}
	}
	// actions/checkout cleans the directory first (clean: true).
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "git", "clone", "--quiet", "--branch", ref, remote, dst)
	cmd.Env = sc.Env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git clone %s@%s: %w: %s", remote, ref, err, out)
	}
	return nil
}

// confined joins rel onto base and refuses a result outside base.
func confined(base, rel string) (string, error) {
	p := rel
	if !filepath.IsAbs(p) {
		p = filepath.Join(base, rel)
	}
	p = filepath.Clean(p)
	if p != base && !strings.HasPrefix(p, base+string(filepath.Separator)) {
		return "", fmt.Errorf("path %q leaves %s", rel, base)
	}
	return p, nil
}

// uploadArtifact stores the files matched by `path` (one pattern a line, relative
// to the workspace or absolute) under the artifact `name`, rooted the way
// actions/upload-artifact@v4 roots them: several search paths at their least
// common ancestor; a single plain file at its directory; a directory or glob at its
// search path. Hidden files are left out (include-hidden-files: false).
func uploadArtifact(_ context.Context, sc *StepContext, with map[string]string) error {
	name := with["name"]
	if name == "" {
		name = "artifact"
	}
	dst := filepath.Join(sc.run.artifacts, name)
	if _, err := os.Stat(dst); err == nil && with["overwrite"] != "true" {
		return fmt.Errorf("an artifact named %q already exists in this run (409 Conflict)", name)
	}
	var patterns []string
	for _, l := range strings.Split(with["path"], "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "!") {
			if !filepath.IsAbs(l) {
				l = filepath.Join(sc.Workspace, l)
			}
			patterns = append(patterns, filepath.Clean(l))
		}
	}
	files, root, err := ArtifactFiles(patterns, with["include-hidden-files"] == "true")
	if err != nil {
		return err
	}
	if len(files) == 0 {
		switch with["if-no-files-found"] {
		case "error":
			return fmt.Errorf("no files were found with the provided path: %s", with["path"])
		default: // warn (the default) or ignore: no artifact is created
			return nil
		}
	}
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	for _, f := range files {
		rel, err := filepath.Rel(root, f)
		if err != nil {
			return err
		}
		if err := copyFile(f, filepath.Join(dst, rel)); err != nil {
			return err
		}
	}
	return nil
}

// ArtifactFiles returns the files the patterns match and the artifact root
// directory, following actions/upload-artifact's search rules. It is exported so
// tests can check the rooting rule directly.
func ArtifactFiles(patterns []string, includeHidden bool) (files []string, root string, err error) {
	var searchPaths []string
	seen := map[string]bool{}
	for _, p := range patterns {
		sp := searchPath(p)
		if !seen[sp] {
			seen[sp] = true
			searchPaths = append(searchPaths, sp)
		}
		matches, err := filepath.Glob(p)
		if err != nil {
			return nil, "", fmt.Errorf("pattern %q: %w", p, err)
		}
		for _, m := range matches {
			if err := walkFiles(m, sp, includeHidden, func(f string) {
				if !seen["file:"+f] {
					seen["file:"+f] = true
					files = append(files, f)
				}
			}); err != nil {
				return nil, "", err
			}
		}
	}
	switch {
	case len(files) == 0:
		return nil, "", nil
	case len(searchPaths) > 1:
		return files, lca(searchPaths), nil
	case len(files) == 1 && searchPaths[0] == files[0]:
		return files, filepath.Dir(files[0]), nil
	}
	return files, searchPaths[0], nil
}

// searchPath is a pattern's literal prefix: the path up to the first segment with a
// glob character (the whole path when it has none).
func searchPath(pattern string) string {
	segs := strings.Split(pattern, string(filepath.Separator))
	for i, s := range segs {
		if strings.ContainsAny(s, "*?[") {
			return filepath.Clean(string(filepath.Separator) + filepath.Join(segs[:i]...))
		}
	}
	return pattern
}

func walkFiles(top, searchRoot string, includeHidden bool, add func(string)) error {
	return filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !includeHidden && hiddenBelow(searchRoot, p) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			add(p)
		}
		return nil
	})
}

func hiddenBelow(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == "." {
		return false
	}
	for _, s := range strings.Split(rel, string(filepath.Separator)) {
		if strings.HasPrefix(s, ".") && s != "." && s != ".." {
			return true
		}
	}
	return false
}

// lca is the least common ancestor directory of absolute paths, by whole path
// segments (upload-artifact's getMultiPathLCA).
func lca(paths []string) string {
	common := strings.Split(paths[0], string(filepath.Separator))
	for _, p := range paths[1:] {
		segs := strings.Split(p, string(filepath.Separator))
		n := 0
		for n < len(common) && n < len(segs) && common[n] == segs[n] {
			n++
		}
		common = common[:n]
	}
	out := strings.Join(common, string(filepath.Separator))
	if out == "" {
		return string(filepath.Separator)
	}
	return out
}

// downloadArtifact extracts artifact `name` into `path` (default the workspace);
// without a name, every artifact of the run into path/<name>/.
func downloadArtifact(_ context.Context, sc *StepContext, with map[string]string) error {
	dst := sc.Workspace
	if p := with["path"]; p != "" {
		if filepath.IsAbs(p) {
			dst = filepath.Clean(p)
		} else {
			dst = filepath.Join(sc.Workspace, p)
		}
	}
	if name := with["name"]; name != "" {
		src := filepath.Join(sc.run.artifacts, name)
		if _, err := os.Stat(src); err != nil {
			return fmt.Errorf("artifact %q not found in this run", name)
		}
		return copyTree(src, dst)
	}
	entries, err := os.ReadDir(sc.run.artifacts)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := copyTree(filepath.Join(sc.run.artifacts, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		return copyFile(p, filepath.Join(dst, rel))
	})
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}
