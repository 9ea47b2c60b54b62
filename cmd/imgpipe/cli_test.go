package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestResolveInterrupted (issue 12 item 17): a Ctrl-C or SIGTERM during resolve
// exits 130, writes no lock and prints no table.
func TestResolveInterrupted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	lock := filepath.Join(dir, "imgpipe.lock.json")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the signal arrived while resolve ran
	var out, errb bytes.Buffer
	code := run(ctx, []string{"resolve", "--talos", "v1.12.x", "--lock", lock}, strings.NewReader(""), &out, &errb, func(string) string { return "" })
	if code != exitInterrupted {
		t.Errorf("resolve after Ctrl-C: exit %d (%s); want %d", code, errb.String(), exitInterrupted)
	}
	if _, err := os.Stat(lock); err == nil {
		t.Errorf("resolve after Ctrl-C wrote %s", lock)
	}
	if out.Len() != 0 {
		t.Errorf("resolve after Ctrl-C: stdout %q; want nothing", out.String())
	}
}

// TestUsageErrorsExit2 (issue 12 item 19): wrong arguments are usage errors.
func TestUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"version", "extra"}, {"diff", "v1.9.6"}, {"upload"}, {"resolve", "v1.9.x"}, {"bogus"}, {"export"}, {"export", "pulumi"},
	} {
		if _, stderr, code := runImgpipe(t, nil, args...); code != exitUsage {
			t.Errorf("imgpipe %s: exit %d (%s); want %d", strings.Join(args, " "), code, strings.TrimSpace(stderr), exitUsage)
		}
	}
	if out, _, code := runImgpipe(t, nil); code != 0 || !strings.Contains(out, "Usage:") {
		t.Errorf("imgpipe (no arguments): exit %d; want 0 with help", code)
	}
}

// TestOneDefaultPerFlag: a flag's help shows one default, not cobra's "(default -1)"
// beside the text's own "(default: proxmox.keep ...)".
func TestOneDefaultPerFlag(t *testing.T) {
	t.Parallel()
	a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.LocalFlags(), c.InheritedFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				one := pflag.NewFlagSet("x", pflag.ContinueOnError)
				one.AddFlag(f)
				if n := strings.Count(one.FlagUsages(), "(default"); n > 1 {
					t.Errorf("imgpipe %s --%s shows %d defaults: %s", c.CommandPath(), f.Name, n, strings.TrimSpace(one.FlagUsages()))
				}
			})
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(a.rootCmd())
}

func TestFlagCompletion(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join("..", "..", "testdata", "imgpipe.yaml")
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "-c", cfg, "machineconfig", "--profile", ""}, []string{"controlplane", "worker", "gpu\tTuring+", "edge"}},
		{[]string{"__complete", "-c", cfg, "export", "terraform", "-p", "w"}, []string{"worker"}},
		{[]string{"__complete", "build", "--stages", ""}, []string{"resolve", "schematic", "verify", "fetch", "mirror", "upload"}},
		{[]string{"__complete", "upgrade-plan", "-o", ""}, []string{"table", "json", "yaml", "script", "tuppr"}},
		{[]string{"__complete", "-c", cfg, "upgrade-plan", "--profile", ""}, []string{"controlplane", "worker", "gpu\tTuring+", "edge"}},
		{[]string{"__complete", "-c", cfg, "upgrade-plan", "-p", "gpu,w"}, []string{"worker"}},
		{[]string{"__complete", "-c", cfg, "upgrade-plan", "--to", "v1.1"}, []string{"v1.12.x\tfrom the site config", "v1.13.x", "v1.12.x", "v1.11.6"}},
		{[]string{"__complete", "version", "-o", ""}, []string{"json"}},
	}
	for _, tt := range tests {
		out, stderr, code := runImgpipe(t, nil, tt.args...)
		if code != 0 {
			t.Errorf("imgpipe %q: exit %d: %s", tt.args, code, stderr)
			continue
		}
		lines := strings.Split(out, "\n")
		for _, w := range tt.want {
			if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, w) }) {
				t.Errorf("imgpipe %q = %q; want a line starting %q", tt.args, out, w)
			}
		}
	}
}

func TestRootHelpDocumentsExitCodes(t *testing.T) {
	t.Parallel()
	out, _, code := runImgpipe(t, nil, "--help")
	for _, w := range []string{"Exit codes", "  0 ", "  1 ", "  2 ", "  3 ", "  130 "} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("imgpipe --help: exit %d, lacks %q", code, w)
		}
	}
}

func TestVersionCommand(t *testing.T) {
	t.Parallel()
	out, stderr, code := runImgpipe(t, nil, "version", "-o", "json")
	var v versionInfo
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Version == "" || v.Go == "" {
		t.Errorf("imgpipe version -o json = %q (exit %d, %s); want a JSON object with version and go", out, code, stderr)
	}
	out, _, code = runImgpipe(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "imgpipe ") {
		t.Errorf("imgpipe version = %q (exit %d); want a line starting imgpipe", out, code)
	}
}

// TestNoEmptyTableOnError (issue 12 item 21): a command that fails, or is
// interrupted, before any result prints nothing on stdout, not a lone table header.
func TestNoEmptyTableOnError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // nothing answers there now
	cfg := filepath.Join(dir, "imgpipe.yaml")
	if err := os.WriteFile(cfg, []byte("version: 1\nprofiles:\n  - name: worker\n    extensions: [{name: qemu-guest-agent}]\n"+
		"proxmox:\n  url: https://"+closed+"/api2/json\n  nodes: [pve1]\n  insecure: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dir, "imgpipe.lock.json")
	if _, stderr, code := runImgpipe(t, nil, "resolve", "-c", cfg, "--talos", "v1.12.x", "--lock", lock); code != 0 {
		t.Fatalf("resolve: exit %d: %s", code, stderr)
	}
	env := map[string]string{"IMGPIPE_PROXMOX_TOKEN": "imgpipe@pve!ci=00000000-0000-0000-0000-000000000000"}
	getenv := func(k string) string { return env[k] }
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
	}{{"unreachable PVE", context.Background()}, {"Ctrl-C", cancelled}} {
		var out, errb bytes.Buffer
		code := run(tc.ctx, []string{"upload", "iso", "-c", cfg, "--lock", lock}, strings.NewReader(""), &out, &errb, getenv)
		if code == 0 || out.Len() != 0 {
			t.Errorf("upload iso (%s): exit %d, stdout %q; want an error and empty stdout (stderr %s)", tc.name, code, out.String(), errb.String())
		}
	}
}
