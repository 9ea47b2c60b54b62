package verify

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/pipeline/verify/verifytest"
	"github.com/imgpipe/imgpipe/site"
)

func TestSitePolicies(t *testing.T) {
	t.Parallel()
	_, servedPEM := verifytest.NewKey(t)
	_, pinnedPEM := verifytest.NewKey(t)
	dir := t.TempDir()
	pinned := filepath.Join(dir, "pinned.pub")
	if err := os.WriteFile(pinned, pinnedPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	served := mustKey(t, "served", servedPEM)
	pinnedKey := mustKey(t, "pinned", pinnedPEM)

	newFactory := func(t *testing.T, body []byte) (url string, hits *atomic.Int32) {
		hits = new(atomic.Int32)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.Write(body)
		}))
		t.Cleanup(srv.Close)
		return srv.URL, hits
	}
	lockFor := func(factory string, withInstaller bool) *site.Lock {
		l := &site.Lock{Factory: factory, Catalog: "ghcr.io/siderolabs/extensions:v1.9.5"}
		if withInstaller {
			l.Profiles = []site.Profile{{Name: "w", Installer: strings.TrimPrefix(factory, "http://") + "/installer/abc:v1.9.5"}}
		}
		return l
	}
	cfg := &site.Config{Verify: site.VerifyConfig{Policies: []site.PolicyConfig{{Match: "quay.io/acme/**", AllowUnsigned: true}}}}

	tests := []struct {
		name      string
		body      []byte
		installer bool
		opts      SiteOptions
		cfgKey    string
		wantHits  int32
		wantKey   string // fingerprint, "" for none
		wantNote  bool
	}{
		{name: "fetches the factory key", body: servedPEM, installer: true, wantHits: 1, wantKey: served.Fingerprint},
		{name: "keyless factory", body: nil, installer: true, wantHits: 1},
		{name: "pinned key file wins, no fetch", body: servedPEM, installer: true, opts: SiteOptions{FactoryKeyFile: pinned}, wantKey: pinnedKey.Fingerprint},
		{name: "config factoryKey, no fetch", body: servedPEM, installer: true, cfgKey: pinned, wantKey: pinnedKey.Fingerprint},
		{name: "dry run does not fetch", body: servedPEM, installer: true, opts: SiteOptions{DryRun: true}, wantNote: true},
		{name: "no factory image, no fetch", body: servedPEM, installer: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url, hits := newFactory(t, tc.body)
			c := *cfg
			c.Verify.FactoryKey = tc.cfgKey
			pols, err := SitePolicies(t.Context(), lockFor(url, tc.installer), &c, tc.opts)
			if err != nil {
				t.Fatalf("SitePolicies() = %v", err)
			}
			names := []string{}
			for _, p := range pols {
				names = append(names, p.Name)
			}
			if strings.Join(names, ",") != "config[0]:quay.io/acme/**,sidero,factory" {
				t.Fatalf("SitePolicies() = %v; want site, sidero, factory in that order", names)
			}
			if got := hits.Load(); got != tc.wantHits {
				t.Errorf("SitePolicies() fetched the factory key %d times; want %d", got, tc.wantHits)
			}
			fp := pols[2]
			gotKey := ""
			if len(fp.Keys) == 1 {
				gotKey = fp.Keys[0].Fingerprint
			}
			if gotKey != tc.wantKey {
				t.Errorf("SitePolicies() factory key = %q; want %q", gotKey, tc.wantKey)
			}
			if len(fp.Identities) != 1 || fp.Identities[0].Subject != FactoryKeylessSubject {
				t.Errorf("SitePolicies() factory identities = %v; want the factory GSA", fp.Identities)
			}
			if (fp.Note != "") != tc.wantNote {
				t.Errorf("SitePolicies() factory note = %q; want note: %v", fp.Note, tc.wantNote)
			}
		})
	}

	_, err := SitePolicies(t.Context(), lockFor("http://127.0.0.1:1", true), cfg, SiteOptions{FactoryKeyFile: filepath.Join(dir, "absent.pub")})
	if !errors.Is(err, fail.ErrUsage) {
		t.Errorf("SitePolicies(absent key file) = %v; want a usage error", err)
	}
}

func TestCheckLock(t *testing.T) {
	t.Parallel()
	host := verifytest.Registry(t)
	sv, pemKey := verifytest.NewKey(t)
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "site.pub")
	if err := os.WriteFile(keyPath, pemKey, 0o644); err != nil {
		t.Fatal(err)
	}
	signed := verifytest.PushRandom(t, host+"/acme/ext-signed:v1")
	verifytest.SignWithKey(t, sv, signed, verifytest.SigOpts{})
	unsigned := verifytest.PushRandom(t, host+"/acme/ext-unsigned:v1")
	cfg := &site.Config{Verify: site.VerifyConfig{Policies: []site.PolicyConfig{{Match: "*/acme/**", Key: keyPath}}}}
	lockWith := func(exts ...name.Digest) *site.Lock {
		l := &site.Lock{Profiles: []site.Profile{{Name: "w"}}}
		for _, d := range exts {
			l.Profiles[0].Extensions = append(l.Profiles[0].Extensions, site.Extension{Ref: d.Context().Tag("v1").String(), Digest: d.DigestStr()})
		}
		return l
	}
	tests := []struct {
		name       string
		lock       *site.Lock
		dryRun     bool
		wantPolicy bool
		want       Summary
	}{
		{name: "all signed", lock: lockWith(signed), want: Summary{Total: 1, Verified: 1}},
		{name: "one unsigned", lock: lockWith(signed, unsigned), wantPolicy: true, want: Summary{Total: 2, Verified: 1, Missing: 1}},
		{name: "dry run", lock: lockWith(signed, unsigned), dryRun: true, want: Summary{Total: 2, Planned: 2}},
	}
	for _, tc := range tests {
		rep, err := CheckLock(t.Context(), tc.lock, cfg, SiteOptions{DryRun: tc.dryRun})
		if got := errors.Is(err, fail.ErrPolicy); got != tc.wantPolicy {
			t.Errorf("CheckLock(%s) error = %v; want policy failure %v", tc.name, err, tc.wantPolicy)
		}
		if rep == nil || rep.Summary != tc.want {
			t.Errorf("CheckLock(%s) summary = %+v; want %+v", tc.name, rep, tc.want)
		}
	}
}
