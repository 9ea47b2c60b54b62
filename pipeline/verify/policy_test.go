package verify

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/pipeline/verify/verifytest"
	"github.com/imgpipe/imgpipe/site"
)

func TestPolicyMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		match []string
		ref   string
		want  bool
	}{
		{[]string{SideroMatch}, "ghcr.io/siderolabs/installer:v1.9.5", true},
		{[]string{SideroMatch}, "ghcr.io/siderolabs/nvidia-container-toolkit-production:550.144.03-v1.17.4", true},
		{[]string{SideroMatch}, "ghcr.io/siderolabs/a/b/c:1", true},
		{[]string{SideroMatch}, "ghcr.io/siderolabs-evil/installer:v1", false},
		{[]string{SideroMatch}, "ghcr.io/other/installer:v1", false},
		{[]string{SideroMatch}, "registry.k8s.io/kube-apiserver:v1.32.3", false},
		{[]string{"factory.talos.dev/**"}, "factory.talos.dev/installer/abc:v1.9.5", true},
		{[]string{"factory.talos.dev/**"}, "factory.talos.dev.evil/installer/abc:v1.9.5", false},
		{[]string{"ghcr.io/siderolabs/*"}, "ghcr.io/siderolabs/installer:v1", true},
		{[]string{"ghcr.io/siderolabs/*"}, "ghcr.io/siderolabs/a/b:v1", false},
		{[]string{"docker.io/library/*"}, "nginx:1.27", true},
		{[]string{"index.docker.io/library/*"}, "docker.io/library/nginx:1.27", true},
		{[]string{"*/keyed/**"}, "127.0.0.1:5000/keyed/x:v1", true},
		{[]string{"**"}, "quay.io/x/y:1", true},
		{[]string{"quay.io/a/*", "quay.io/b/*"}, "quay.io/b/y:1", true},
	}
	for _, tc := range tests {
		p := Policy{Name: "t", Match: tc.match, AllowUnsigned: true}
		if err := p.Validate(); err != nil {
			t.Fatalf("Policy{Match: %q}.Validate() = %v", tc.match, err)
		}
		ref, err := name.ParseReference(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Matches(ref); got != tc.want {
			t.Errorf("Policy{Match: %q}.Matches(%q) = %v; want %v", tc.match, tc.ref, got, tc.want)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	_, pemKey := verifytest.NewKey(t)
	key := mustKey(t, "k.pub", pemKey)
	tests := []struct {
		name    string
		p       Policy
		wantErr error // nil: valid
		wantMsg string
	}{
		{name: "sidero", p: SideroPolicy()},
		{name: "factory without key", p: FactoryPolicy([]string{"factory.talos.dev"}, nil)},
		{name: "key only", p: Policy{Name: "k", Match: []string{"a/**"}, Keys: []Key{key}}},
		{name: "empty identity list and no key", p: Policy{Name: "e", Match: []string{"a/**"}}, wantErr: ErrNoIdentity},
		{name: "identity without subject", p: Policy{Name: "s", Match: []string{"a/**"}, Identities: []Identity{{Issuer: GoogleIssuer}}}, wantErr: ErrNoIdentity},
		{name: "identity without issuer", p: Policy{Name: "i", Match: []string{"a/**"}, Identities: []Identity{{SubjectRegExp: ".*"}}}, wantErr: ErrNoIdentity},
		{name: "zero identity", p: Policy{Name: "z", Match: []string{"a/**"}, Identities: []Identity{{}}}, wantErr: ErrNoIdentity},
		{name: "bad regexp", p: Policy{Name: "r", Match: []string{"a/**"}, Identities: []Identity{{Issuer: GoogleIssuer, SubjectRegExp: "("}}}, wantMsg: "regexp"},
		{name: "no match", p: Policy{Name: "m", AllowUnsigned: true}, wantMsg: "no match pattern"},
		{name: "bad glob", p: Policy{Name: "g", Match: []string{"a/[/**"}, AllowUnsigned: true}, wantMsg: "syntax error"},
		{name: "** not after slash", p: Policy{Name: "g", Match: []string{"ghcr.io/sidero**"}, AllowUnsigned: true}, wantMsg: "must follow a slash"},
	}
	for _, tc := range tests {
		err := tc.p.Validate()
		switch {
		case tc.wantErr == nil && tc.wantMsg == "":
			if err != nil {
				t.Errorf("Validate(%s) = %v; want nil", tc.name, err)
			}
		case tc.wantErr != nil:
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Validate(%s) = %v; want %v", tc.name, err, tc.wantErr)
			}
		default:
			if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Validate(%s) = %v; want an error containing %q", tc.name, err, tc.wantMsg)
			}
		}
		if err != nil {
			if _, nerr := New([]Policy{tc.p}); !errors.Is(nerr, fail.ErrUsage) {
				t.Errorf("New(%s) = %v; want a usage error", tc.name, nerr)
			}
		}
	}
}

func TestPoliciesFromConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, pemKey := verifytest.NewKey(t)
	keyPath := filepath.Join(dir, "cosign.pub")
	if err := os.WriteFile(keyPath, pemKey, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := site.VerifyConfig{Policies: []site.PolicyConfig{
		{Match: "registry.k8s.io/**", Identities: []site.IdentityConfig{{Issuer: GoogleIssuer, Subject: "krel-trust@k8s-releng-prod.iam.gserviceaccount.com"}}},
		{Match: "quay.io/acme/*", Key: keyPath},
		{Match: "docker.io/library/*", AllowUnsigned: true},
	}}
	got, err := PoliciesFromConfig(cfg, os.ReadFile)
	if err != nil {
		t.Fatalf("PoliciesFromConfig() = %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("PoliciesFromConfig() = %d policies; want 3", len(got))
	}
	if got[0].Identities[0].Subject != "krel-trust@k8s-releng-prod.iam.gserviceaccount.com" || len(got[1].Keys) != 1 || !got[2].AllowUnsigned {
		t.Errorf("PoliciesFromConfig() = %+v; want the identity, the key and allowUnsigned carried over", got)
	}
	if got[1].Keys[0].Name != keyPath {
		t.Errorf("PoliciesFromConfig() key name = %q; want %q", got[1].Keys[0].Name, keyPath)
	}

	bad := site.VerifyConfig{Policies: []site.PolicyConfig{
		{Match: "a/**"}, // nothing to check against
		{Match: "b/**", Key: filepath.Join(dir, "absent.pub")},
		{Match: "c/**", Identities: []site.IdentityConfig{{Issuer: GoogleIssuer}}},
	}}
	_, err = PoliciesFromConfig(bad, os.ReadFile)
	if !errors.Is(err, fail.ErrUsage) || !errors.Is(err, ErrNoIdentity) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("PoliciesFromConfig(bad) = %v; want a usage error listing all three problems", err)
	}
	for _, want := range []string{"verify.policies[0]", "verify.policies[1].key", "verify.policies[2]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("PoliciesFromConfig(bad) = %v; want it to name %s", err, want)
		}
	}
}

func TestFactoryHosts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url, registry string
		want          []string
		wantErr       bool
	}{
		{"https://factory.talos.dev", "", []string{"factory.talos.dev"}, false},
		{"https://factory.talos.dev", "factory.talos.dev", []string{"factory.talos.dev"}, false},
		{"https://factory.example:8443", "registry.example", []string{"factory.example:8443", "registry.example"}, false},
		{"", "", nil, false},
		{"not a url", "", nil, true},
	}
	for _, tc := range tests {
		got, err := FactoryHosts(tc.url, tc.registry)
		if (err != nil) != tc.wantErr || strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("FactoryHosts(%q, %q) = %v, %v; want %v (error %v)", tc.url, tc.registry, got, err, tc.want, tc.wantErr)
		}
	}
}
