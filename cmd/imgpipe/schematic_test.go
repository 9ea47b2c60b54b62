package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/factory/factorytest"
	"github.com/imgpipe/imgpipe/site"
)

const qemuSchematicID = "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"

// fakeSite starts a fake factory and resolves a one-profile site against it with the
// real `imgpipe resolve --lock`, returning the factory and the lock's path.
func fakeSite(t *testing.T, opts factorytest.Options) (*factorytest.Factory, string) {
	t.Helper()
	if opts.Catalog.Versions == nil {
		opts.Catalog = factorytest.ReferenceCatalog()
	}
	f := factorytest.New(t, opts)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "imgpipe.yaml")
	yaml := "version: 1\nfactory:\n  url: " + f.URL() + "\nprofiles:\n  - name: worker\n    platform: nocloud\n    extensions:\n      - name: qemu-guest-agent\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dir, "imgpipe.lock.json")
	if _, stderr, code := runImgpipe(t, nil, "resolve", "--config", cfg, "--talos", "v1.9.5", "--lock", lock, "-o", "json"); code != 0 {
		t.Fatalf("imgpipe resolve = exit %d; want 0; stderr:\n%s", code, stderr)
	}
	return f, lock
}

func readLockT(t *testing.T, path string) *site.Lock {
	t.Helper()
	l, err := site.ReadLock(path)
	if err != nil {
		t.Fatalf("ReadLock(%q) error = %v", path, err)
	}
	return l
}

func TestSchematicPush(t *testing.T) {
	t.Parallel()
	f, lock := fakeSite(t, factorytest.Options{})
	f.Inject(factorytest.RouteSchematics, factorytest.Fault{Status: 503, RetryAfter: "0"})
	stdout, stderr, code := runImgpipe(t, nil, "schematic", "push", "--lock", lock, "-o", "json")
	if code != 0 {
		t.Fatalf("schematic push = exit %d; want 0; stderr:\n%s", code, stderr)
	}
	var got []factory.SchematicResult
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("schematic push -o json: %v\n%s", err, stdout)
	}
	if len(got) != 1 || got[0].ID != qemuSchematicID || got[0].Profile != "worker" || got[0].Factory != f.URL() {
		t.Errorf("schematic push = %+v; want worker %s at %s", got, qemuSchematicID, f.URL())
	}
	if !f.HasSchematic(qemuSchematicID) {
		t.Errorf("fake factory does not know %s after push", qemuSchematicID)
	}
	// Idempotent.
	if _, stderr, code := runImgpipe(t, nil, "schematic", "push", "--lock", lock); code != 0 {
		t.Errorf("second schematic push = exit %d; want 0; stderr:\n%s", code, stderr)
	}
}

func TestSchematicPushFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     factorytest.Options
		faults   []factorytest.Fault
		env      map[string]string
		args     []string
		wantCode int
		wantErr  []string
		notErr   []string
	}{
		{name: "enterprise factory returns another ID", opts: factorytest.Options{Owner: "alice"}, faults: []factorytest.Fault{{Status: 500}},
			wantCode: 1, wantErr: []string{"returned ID", "local ID is " + qemuSchematicID}},
		{name: "wrong credentials", opts: factorytest.Options{Username: "ci", Password: "right"},
			env: map[string]string{envFactoryUser: "ci", envFactoryPass: "hunter2-wrong"}, wantCode: 1, wantErr: []string{"401"}, notErr: []string{"hunter2-wrong"}},
		{name: "half the credentials", env: map[string]string{envFactoryUser: "ci"}, wantCode: 2, wantErr: []string{envFactoryPass}},
		{name: "unknown profile", args: []string{"--profile", "nope"}, wantCode: 2, wantErr: []string{`"nope"`, "worker"}},
		{name: "bad factory URL", args: []string{"--factory", "ftp://x"}, wantCode: 2, wantErr: []string{"--factory"}},
		{name: "factory stays slow", faults: []factorytest.Fault{{Delay: 10e9, Times: 2}}, args: []string{"--retries", "1", "--timeout", "100ms"},
			wantCode: 1, wantErr: []string{"after 2 attempts", "no answer within 100ms"}},
		{name: "429 asking for longer than we wait", faults: []factorytest.Fault{{Status: 429, RetryAfter: "3600"}}, wantCode: 1, wantErr: []string{"429"}},
		{name: "factory keeps failing", faults: []factorytest.Fault{{Status: 500, Times: 2}}, args: []string{"--retries", "1"}, wantCode: 1, wantErr: []string{"500"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, lock := fakeSite(t, tt.opts)
			f.Inject(factorytest.RouteSchematics, tt.faults...)
			_, stderr, code := runImgpipe(t, tt.env, append([]string{"schematic", "push", "--lock", lock}, tt.args...)...)
			if code != tt.wantCode {
				t.Fatalf("schematic push (%s) = exit %d; want %d; stderr:\n%s", tt.name, code, tt.wantCode, stderr)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(stderr, s) {
					t.Errorf("schematic push (%s) stderr = %q; want it to contain %q", tt.name, stderr, s)
				}
			}
			for _, s := range tt.notErr {
				if strings.Contains(stderr, s) {
					t.Errorf("schematic push (%s) stderr = %q; must not contain %q", tt.name, stderr, s)
				}
			}
		})
	}
}

func TestSchematicPushFactoryOverride(t *testing.T) {
	t.Parallel()
	f, lock := fakeSite(t, factorytest.Options{Username: "ci", Password: "pw"})
	// A lock resolved against another factory is pushed to the one named by --factory.
	l := readLockT(t, lock)
	l.Factory = "https://factory.example.invalid"
	if err := site.WriteLock(lock, l); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{envFactoryUser: "ci", envFactoryPass: "pw"}
	if _, stderr, code := runImgpipe(t, env, "schematic", "push", "--lock", lock, "--factory", f.URL()); code != 0 {
		t.Fatalf("schematic push --factory = exit %d; want 0; stderr:\n%s", code, stderr)
	}
	if !f.HasSchematic(qemuSchematicID) {
		t.Errorf("fake factory does not know %s after push --factory", qemuSchematicID)
	}
}

func TestSchematicPrewarm(t *testing.T) {
	t.Parallel()
	f, lock := fakeSite(t, factorytest.Options{BuildDelay: 200e6})
	if _, stderr, code := runImgpipe(t, nil, "schematic", "push", "--lock", lock); code != 0 {
		t.Fatalf("schematic push = exit %d; stderr:\n%s", code, stderr)
	}
	f.Inject(factorytest.RouteRegistry, factorytest.Fault{Status: 502})
	stdout, stderr, code := runImgpipe(t, nil, "schematic", "prewarm", "--lock", lock, "--timeout", "50ms", "--build-timeout", "10s")
	if code != 0 {
		t.Fatalf("schematic prewarm = exit %d; want 0; stderr:\n%s", code, stderr)
	}
	want := "installer/" + qemuSchematicID + ":v1.9.5"
	if b := f.Builds(); len(b) != 1 || b[0] != want {
		t.Errorf("factory builds = %v; want [%s]", b, want)
	}
	if !strings.Contains(stdout, "sha256:") {
		t.Errorf("schematic prewarm stdout = %q; want the manifest digest", stdout)
	}
}

func TestSchematicDryRuns(t *testing.T) {
	t.Parallel()
	f, lock := fakeSite(t, factorytest.Options{})
	action := func() string {
		t.Helper()
		stdout, stderr, code := runImgpipe(t, nil, "schematic", "push", "--lock", lock, "--dry-run", "-o", "json")
		if code != 0 {
			t.Fatalf("schematic push --dry-run = exit %d; stderr:\n%s", code, stderr)
		}
		var rs []factory.SchematicResult
		if err := json.Unmarshal([]byte(stdout), &rs); err != nil || len(rs) != 1 || !rs[0].Planned {
			t.Fatalf("schematic push --dry-run -o json = %v, %v; want one planned result", rs, err)
		}
		return rs[0].Action
	}
	if got := action(); got != factory.ActionCreate {
		t.Errorf("push --dry-run before push = %q; want %q", got, factory.ActionCreate)
	}
	if f.HasSchematic(qemuSchematicID) {
		t.Fatalf("push --dry-run created the schematic")
	}
	for _, r := range f.RequestsFor(factorytest.RouteSchematics) {
		if r.Method != "GET" {
			t.Errorf("push --dry-run sent %s %s; want only GETs", r.Method, r.Path)
		}
	}
	if _, stderr, code := runImgpipe(t, nil, "schematic", "push", "--lock", lock); code != 0 {
		t.Fatalf("schematic push = exit %d; stderr:\n%s", code, stderr)
	}
	if got := action(); got != factory.ActionPresent {
		t.Errorf("push --dry-run after push = %q; want %q", got, factory.ActionPresent)
	}
	stdout, stderr, code := runImgpipe(t, nil, "schematic", "prewarm", "--lock", lock, "--dry-run")
	if code != 0 || !strings.Contains(stdout, "installer/"+qemuSchematicID+":v1.9.5") {
		t.Errorf("prewarm --dry-run = exit %d, %q (stderr %q); want the installer listed", code, stdout, stderr)
	}
	if b := f.Builds(); len(b) != 0 {
		t.Errorf("prewarm --dry-run built %v; want nothing", b)
	}
}
