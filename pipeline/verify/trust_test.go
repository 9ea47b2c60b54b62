package verify

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/pipeline/verify/verifytest"
)

func TestFetchFactoryKey(t *testing.T) {
	t.Parallel()
	_, pemKey := verifytest.NewKey(t)
	tests := []struct {
		name    string
		status  int
		body    string
		wantKey bool
		wantErr string
	}{
		{name: "key", status: http.StatusOK, body: string(pemKey), wantKey: true},
		{name: "keyless factory serves an empty body", status: http.StatusOK, body: ""},
		{name: "not a key", status: http.StatusOK, body: "<html>hello</html>", wantErr: "reading public key"},
		{name: "server error", status: http.StatusInternalServerError, body: "boom", wantErr: "500"},
		{name: "oversized", status: http.StatusOK, body: strings.Repeat("A", maxKeySize+10), wantErr: "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/oci/cosign/signing-key.pub" {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/x-pem-file")
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			k, err := FetchFactoryKey(t.Context(), srv.Client(), srv.URL+"/")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("FetchFactoryKey() = %v, %v; want error containing %q", k, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("FetchFactoryKey() error = %v", err)
			}
			if (k != nil) != tc.wantKey {
				t.Fatalf("FetchFactoryKey() key = %v; want key: %v", k, tc.wantKey)
			}
			if k != nil && k.Name != srv.URL+"/oci/cosign/signing-key.pub" {
				t.Errorf("FetchFactoryKey() name = %q; want the URL it came from", k.Name)
			}
		})
	}
	if _, err := FetchFactoryKey(t.Context(), http.DefaultClient, "::"); !errors.Is(err, fail.ErrUsage) {
		t.Errorf("FetchFactoryKey(%q) = %v; want a usage error", "::", err)
	}
}

func TestTrustedRootFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ss := verifytest.NewSigstore(t)
	path := ss.WriteTrustedRoot(t, dir)
	tm, err := TrustedRootFile(path)(context.Background())
	if err != nil {
		t.Fatalf("TrustedRootFile(%q) = %v", path, err)
	}
	if len(tm.FulcioCertificateAuthorities()) != 1 || len(tm.RekorLogs()) != 1 {
		t.Errorf("TrustedRootFile(%q) = %d CAs, %d Rekor logs; want 1 and 1", path, len(tm.FulcioCertificateAuthorities()), len(tm.RekorLogs()))
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{bad, filepath.Join(dir, "absent.json")} {
		if _, err := TrustedRootFile(p)(context.Background()); !errors.Is(err, fail.ErrUsage) {
			t.Errorf("TrustedRootFile(%q) = %v; want a usage error", p, err)
		}
	}
}
