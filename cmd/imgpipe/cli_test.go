package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
