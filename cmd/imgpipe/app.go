package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

// defaultConfigFile is read when --config is not given and the file exists.
const defaultConfigFile = "imgpipe.yaml"

// defaultLockFile is what --lock defaults to for stages that read a lock.
const defaultLockFile = "imgpipe.lock.json"

// loadConfig reads --config, or ./imgpipe.yaml if present, or returns the built-in default site.
func (a *app) loadConfig() (*site.Config, error) {
	path := a.configPath
	if path == "" {
		if _, err := os.Stat(defaultConfigFile); err == nil {
			path = defaultConfigFile
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("checking for %s: %w", defaultConfigFile, err)
		}
	}
	if path == "" {
		a.log.Debug("no config file; using the built-in default site")
		return site.DefaultConfig(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fail.Usage(fmt.Errorf("reading config: %w", err))
	}
	cfg, err := site.ParseConfig(path, data)
	if err != nil {
		return nil, err
	}
	cfg.ResolvePaths(filepath.Dir(path))
	if err := cfg.LoadSchematics(path, os.ReadFile); err != nil {
		return nil, err
	}
	return cfg, nil
}

// loadLock reads a lockfile written by `imgpipe resolve --lock`.
func (a *app) loadLock(path string) (*site.Lock, error) {
	if path == "" {
		path = defaultLockFile
	}
	return site.ReadLock(path)
}

// output formats accepted by -o.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

// render writes v as JSON or YAML, or calls table for the human form.
// JSON is the documented contract; YAML is the same data through a JSON round trip,
// so both use the snake_case JSON field names.
func render(w io.Writer, format string, v any, table func(io.Writer) error) error {
	switch format {
	case formatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	case formatYAML:
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		// JSON is YAML: parsing it into a node keeps the contract's field order.
		var doc yaml.Node
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			return err
		}
		plainStyle(&doc)
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(&doc); err != nil {
			return err
		}
		return enc.Close()
	case formatTable, "":
		return table(w)
	default:
		return fail.Usage(fmt.Errorf("unknown output format %q: use table, json or yaml", format))
	}
}

// plainStyle drops the JSON quoting and flow styles so the YAML reads like YAML.
func plainStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plainStyle(c)
	}
}

// renderResult renders a command's result next to its error. When the run failed
// (an error, Ctrl-C) before producing a single row, stdout stays empty: a lone
// table header or an empty JSON list would read as a result; the error on stderr
// and the exit code say what happened. Partial results are still shown.
func renderResult(w io.Writer, format string, v any, rows int, table func(io.Writer) error, runErr error) error {
	if runErr != nil && rows == 0 {
		return runErr
	}
	if err := render(w, format, v, table); err != nil && runErr == nil {
		return err
	}
	return runErr
}
