package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// outFile is one file of a multi-file output.
type outFile struct {
	Path string
	Data []byte
}

// writeFileSet writes every file or none: each goes to a temporary file beside its
// target first, every target is checked to be replaceable (absent or a regular
// file), and only then are the temporaries renamed into place. A failure before the
// renames leaves the directory as it was.
func writeFileSet(files []outFile) error {
	for _, f := range files {
		if st, err := os.Lstat(f.Path); err == nil && !st.Mode().IsRegular() {
			return fmt.Errorf("writing %s: it exists and is not a regular file; nothing was written", f.Path)
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("writing %s: %w; nothing was written", f.Path, err)
		}
	}
	tmps := make([]string, 0, len(files))
	cleanup := func() {
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	for _, f := range files {
		tmp, err := writeTemp(f)
		if err != nil {
			cleanup()
			return fmt.Errorf("writing %s: %w; nothing was written", f.Path, err)
		}
		tmps = append(tmps, tmp)
	}
	for i, f := range files {
		if err := os.Rename(tmps[i], f.Path); err != nil {
			cleanup()
			return fmt.Errorf("writing %s: %w", f.Path, err)
		}
	}
	return nil
}

func writeTemp(f outFile) (string, error) {
	t, err := os.CreateTemp(filepath.Dir(f.Path), "."+filepath.Base(f.Path)+".tmp-*")
	if err != nil {
		return "", err
	}
	if _, err := t.Write(f.Data); err != nil {
		t.Close()
		os.Remove(t.Name())
		return "", err
	}
	if err := t.Chmod(0o644); err != nil {
		t.Close()
		os.Remove(t.Name())
		return "", err
	}
	if err := t.Close(); err != nil {
		os.Remove(t.Name())
		return "", err
	}
	return t.Name(), nil
}
