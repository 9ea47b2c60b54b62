package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/pipeline/verify"
	"github.com/imgpipe/imgpipe/pipeline/verify/verifytest"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/registry"
	"github.com/imgpipe/imgpipe/upload/registry/registrytest"
)

// TestMirrorCarriesBundleReferrers signs an image in cosign v3's default format (a
// sigstore bundle attached as an OCI referrer; distribution has no referrers API, so it
// lives under the sha256-<hex> fallback tag), mirrors it by push into a plain
// docker-registry and by warming a docker-registry pull-through cache, and then
// `imgpipe verify --mirror` must verify it at each mirror, the cache with its upstream
// stopped (issue 12 item 10).
func TestMirrorCarriesBundleReferrers(t *testing.T) {
	t.Parallel()
	up := registrytest.StartT(t, registrytest.Config{})
	plain := registrytest.StartT(t, registrytest.Config{})
	cache := registrytest.StartT(t, registrytest.Config{RemoteURL: up.URL()})
	ref := up.Host + "/siderolabs/app:v1"
	d := verifytest.PushRandom(t, ref)
	sv, pub := verifytest.NewKey(t)
	verifytest.SignBundleWithKey(t, sv, d, verifytest.BundleOpts{})

	dir := t.TempDir()
	key := filepath.Join(dir, "app.pub")
	if err := os.WriteFile(key, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dir, "imgpipe.lock.json")
	l := &site.Lock{Schema: site.LockSchema, Talos: "v1.9.6", CoreImages: []site.Image{{Role: "app", Ref: ref, Digest: d.DigestStr()}}}
	if err := site.WriteLock(lock, l); err != nil {
		t.Fatal(err)
	}
	config := func(name, endpoint, mode string) string {
		p := filepath.Join(dir, name)
		cfg := fmt.Sprintf("version: 1\nprofiles:\n  - name: worker\nregistries:\n  mirrors:\n    %q:\n      endpoint: http://%s\n      mode: %s\nverify:\n  policies:\n    - match: %q\n      key: %s\n",
			up.Host, endpoint, mode, up.Host+"/**", key)
		if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		mode, endpoint string
		stopUpstream   bool
	}{
		{"push", plain.Host, false},
		{"warm", cache.Host, true},
	} {
		cfg := config(tc.mode+".yaml", tc.endpoint, tc.mode)
		stdout, stderr, code := runImgpipe(t, nil, "mirror", "--lock", lock, "--config", cfg, "--journal", "off", "-o", "json")
		if code != 0 {
			t.Fatalf("imgpipe mirror (%s) = exit %d\n%s\n%s", tc.mode, code, stdout, stderr)
		}
		var rep registry.Report
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("decoding mirror report: %v\n%s", err, stdout)
		}
		fallback := strings.Replace(d.DigestStr(), ":", "-", 1)
		if got := rep.Images[0].Signatures; !contains(got, fallback) {
			t.Errorf("imgpipe mirror (%s): signatures carried = %v; want the referrers tag %s", tc.mode, got, fallback)
		}
		if tc.stopUpstream {
			up.Stop()
		}
		stdout, stderr, code = runImgpipe(t, nil, "verify", "--config", cfg, "--lock", lock, "--mirror", "-o", "json")
		if code != exitOK {
			t.Fatalf("imgpipe verify --mirror (%s) = exit %d; want %d\n%s\n%s", tc.mode, code, exitOK, stdout, stderr)
		}
		var vr verify.Report
		if err := json.Unmarshal([]byte(stdout), &vr); err != nil {
			t.Fatalf("decoding verify report: %v\n%s", err, stdout)
		}
		for _, r := range vr.Results {
			if r.Image == ref && (r.Verdict != verify.Verified || !strings.HasPrefix(r.Source, tc.endpoint+"/")) {
				t.Errorf("imgpipe verify --mirror (%s): %s = %s from %q (%s); want verified at %s", tc.mode, r.Image, r.Verdict, r.Source, r.Reason, tc.endpoint)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestMirrorPushesReferrersAPIOnly: an upstream with the OCI referrers API keeps a
// bundle only there (no fallback tag); push copies it and, since distribution has no
// referrers API, lists it under the mirror's fallback tag, where `imgpipe verify
// --mirror` finds and verifies it (issue 12 item 10).
func TestMirrorPushesReferrersAPIOnly(t *testing.T) {
	t.Parallel()
	upHost := verifytest.RegistryWithReferrers(t)
	plain := registrytest.StartT(t, registrytest.Config{})
	ref := upHost + "/siderolabs/app:v2"
	d := verifytest.PushRandom(t, ref)
	sv, pub := verifytest.NewKey(t)
	verifytest.SignBundleWithKey(t, sv, d, verifytest.BundleOpts{})
	fallback := strings.Replace(d.DigestStr(), ":", "-", 1)
	if got := headStatus(t, upHost, "siderolabs/app", fallback); got != http.StatusNotFound {
		t.Fatalf("upstream fallback tag %s: HEAD = %d; want 404 (the bundle only in the referrers API)", fallback, got)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "app.pub")
	if err := os.WriteFile(key, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dir, "imgpipe.lock.json")
	if err := site.WriteLock(lock, &site.Lock{Schema: site.LockSchema, Talos: "v1.9.6", CoreImages: []site.Image{{Role: "app", Ref: ref, Digest: d.DigestStr()}}}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "imgpipe.yaml")
	body := fmt.Sprintf("version: 1\nprofiles:\n  - name: worker\nregistries:\n  mirrors:\n    %q:\n      endpoint: http://%s\n      mode: push\nverify:\n  policies:\n    - match: %q\n      key: %s\n",
		upHost, plain.Host, upHost+"/**", key)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runImgpipe(t, nil, "mirror", "--lock", lock, "--config", cfg, "--journal", "off", "-o", "json")
	if code != 0 {
		t.Fatalf("imgpipe mirror = exit %d\n%s\n%s", code, stdout, stderr)
	}
	stdout, stderr, code = runImgpipe(t, nil, "verify", "--config", cfg, "--lock", lock, "--mirror", "-o", "json")
	if code != exitOK {
		t.Fatalf("imgpipe verify --mirror = exit %d; want %d\n%s\n%s", code, exitOK, stdout, stderr)
	}
	var vr verify.Report
	if err := json.Unmarshal([]byte(stdout), &vr); err != nil {
		t.Fatalf("decoding verify report: %v\n%s", err, stdout)
	}
	for _, r := range vr.Results {
		if r.Image == ref && (r.Verdict != verify.Verified || !strings.HasPrefix(r.Source, plain.Host+"/")) {
			t.Errorf("imgpipe verify --mirror: %s = %s from %q (%s); want verified at %s", r.Image, r.Verdict, r.Source, r.Reason, plain.Host)
		}
	}
	// A rerun finds the referrers tag complete and writes nothing.
	stdout, _, code = runImgpipe(t, nil, "mirror", "--lock", lock, "--config", cfg, "--journal", "off", "-o", "json")
	var rep registry.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 0 || rep.Totals.Present != 1 {
		t.Errorf("imgpipe mirror rerun = exit %d, totals %+v (%v); want 1 present", code, rep.Totals, err)
	}
}

func headStatus(t *testing.T, host, repo, ref string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, "http://"+host+"/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Accept", registrytest.OCIIndex)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
