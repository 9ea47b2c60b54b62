package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/factory/factorytest"
	"github.com/imgpipe/imgpipe/site"
)

// TestResolveOnlineCLI runs `imgpipe resolve --online` end to end against the fake factory:
// the live catalog's digest is used and the new patch release is reported.
func TestResolveOnlineCLI(t *testing.T) {
	t.Parallel()
	cat := factorytest.ReferenceCatalog()
	digest := "sha256:" + strings.Repeat("9", 64)
	for i, e := range cat.Extensions["v1.9.6"] {
		if e.Name == "siderolabs/qemu-guest-agent" {
			cat.Extensions["v1.9.6"][i].Digest = digest
		}
	}
	cat.Extensions["v1.9.7"] = append([]factory.ExtensionInfo(nil), cat.Extensions["v1.9.6"]...)
	cat.Versions = append(cat.Versions, "v1.9.7")
	f := factorytest.New(t, factorytest.Options{Catalog: cat})

	stdout, stderr, code := runImgpipe(t, nil, "resolve", "--online", "--factory", f.URL(), "--talos", "v1.9.x", "--profile", "controlplane", "-o", "json")
	if code != 0 {
		t.Fatalf("resolve --online: exit %d: %s", code, stderr)
	}
	var l site.Lock
	if err := json.Unmarshal([]byte(stdout), &l); err != nil {
		t.Fatal(err)
	}
	// The factory lists v1.9.7: a primary source, so the range picks it.
	if l.Talos != "v1.9.7" {
		t.Errorf("resolve --online v1.9.x picked %s; want v1.9.7 (listed by the factory, not broken)", l.Talos)
	}
	if got := l.Profiles[0].Extensions[0].Digest; got != digest {
		t.Errorf("resolve --online: qemu-guest-agent digest %s; want the live %s", got, digest)
	}
	if !strings.Contains(l.Matrix, "online") {
		t.Errorf("resolve --online: lock matrix %q does not say online", l.Matrix)
	}
	for _, want := range []string{"v1.9.7"} {
		if !slices.ContainsFunc(l.Notes, func(n string) bool { return strings.HasPrefix(n, "online: "+want) }) {
			t.Errorf("resolve --online: notes %q lack a report about %s", l.Notes, want)
		}
	}
	if l.Factory != f.URL() {
		t.Errorf("resolve --online --factory: lock factory %s; want %s", l.Factory, f.URL())
	}

	// An unreachable factory is an operational error (exit 1), nothing printed.
	stdout, _, code = runImgpipe(t, nil, "resolve", "--online", "--factory", "http://127.0.0.1:1", "--retries", "0", "--timeout", "2s")
	if code != 1 || stdout != "" {
		t.Errorf("resolve --online against a dead factory: exit %d, stdout %q; want 1 and nothing", code, stdout)
	}
}
