package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/imgpipe/imgpipe/factory/factorytest"
	"github.com/imgpipe/imgpipe/site"
)

// checkFactoryEverywhere fails unless every reference the lock derives from the
// factory - ISO and disk URLs, installer refs, the lock's factory - uses base.
func checkFactoryEverywhere(t *testing.T, l *site.Lock, base string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	if l.Factory != base {
		t.Errorf("lock factory = %s; want %s", l.Factory, base)
	}
	if len(l.Profiles) == 0 {
		t.Fatal("lock has no profiles")
	}
	for _, p := range l.Profiles {
		for what, got := range map[string]string{"iso": p.ISO, "disk_image": p.DiskImage} {
			if !strings.HasPrefix(got, base+"/image/") {
				t.Errorf("profile %s %s = %s; want it under %s/image/", p.Name, what, got, base)
			}
		}
		if !strings.HasPrefix(p.Installer, u.Host+"/") {
			t.Errorf("profile %s installer = %s; want the registry host %s", p.Name, p.Installer, u.Host)
		}
		if strings.Contains(p.Installer+p.ISO+p.DiskImage, "factory.talos.dev") {
			t.Errorf("profile %s still names factory.talos.dev: %s %s %s", p.Name, p.Installer, p.ISO, p.DiskImage)
		}
	}
}

// TestResolveFactoryOffline: `resolve --factory URL` without --online moves every
// derived reference to that factory and never contacts it; prewarm then uses the
// lock's factory registry without being told again.
func TestResolveFactoryOffline(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		http.Error(w, "offline resolve must not call the factory", http.StatusTeapot)
	}))
	t.Cleanup(srv.Close)
	lockPath := filepath.Join(t.TempDir(), "lock.json")
	stdout, stderr, code := runImgpipe(t, nil, "resolve", "--factory", srv.URL+"/", "--talos", "v1.12.x", "-o", "json", "--lock", lockPath)
	if code != 0 {
		t.Fatalf("resolve --factory: exit %d: %s", code, stderr)
	}
	var l site.Lock
	if err := json.Unmarshal([]byte(stdout), &l); err != nil {
		t.Fatal(err)
	}
	checkFactoryEverywhere(t, &l, srv.URL)
	if n := hits.Load(); n != 0 {
		t.Errorf("offline resolve made %d requests to the factory; want 0", n)
	}

	stdout, stderr, code = runImgpipe(t, nil, "schematic", "prewarm", "--lock", lockPath, "--dry-run", "-o", "json")
	if code != 0 {
		t.Fatalf("schematic prewarm --dry-run: exit %d: %s", code, stderr)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	if strings.Count(stdout, `"`+host+"/") != len(l.Profiles) || strings.Contains(stdout, "factory.talos.dev") {
		t.Errorf("prewarm --dry-run refs = %s; want every installer under %s", stdout, host)
	}

	// A URL with credentials is refused (they come from the environment).
	if _, stderr, code := runImgpipe(t, nil, "resolve", "--factory", "http://u:p@127.0.0.1:1"); code != exitUsage {
		t.Errorf("resolve --factory with credentials: exit %d (%s); want %d", code, stderr, exitUsage)
	}
}

// TestResolveFactoryOnline: with --online the installer refs move too, not only the URLs.
func TestResolveFactoryOnline(t *testing.T) {
	t.Parallel()
	f := factorytest.New(t, factorytest.Options{Catalog: factorytest.ReferenceCatalog()})
	stdout, stderr, code := runImgpipe(t, nil, "resolve", "--online", "--factory", f.URL(), "--talos", "v1.9.x", "-o", "json")
	if code != 0 {
		t.Fatalf("resolve --online --factory: exit %d: %s", code, stderr)
	}
	var l site.Lock
	if err := json.Unmarshal([]byte(stdout), &l); err != nil {
		t.Fatal(err)
	}
	checkFactoryEverywhere(t, &l, f.URL())
}
