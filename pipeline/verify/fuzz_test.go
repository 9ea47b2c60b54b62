package verify

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/cosign/v2/pkg/oci/static"

	"github.com/imgpipe/imgpipe/site"
)

// FuzzPolicyMatches checks the glob matcher never panics and that a "prefix/**" pattern
// only ever matches repositories under that prefix.
func FuzzPolicyMatches(f *testing.F) {
	for _, s := range [][2]string{
		{SideroMatch, "ghcr.io/siderolabs/installer:v1.9.5"},
		{"factory.talos.dev/**", "factory.talos.dev/installer/abc:v1"},
		{"*/keyed/**", "127.0.0.1:5000/keyed/x:v1"},
		{"docker.io/library/*", "nginx"},
		{"**", "quay.io/a/b@sha256:" + strings.Repeat("a", 64)},
		{"a/[", "a/b:c"},
		{SideroMatch, "GHCR.IO/siderolabs/installer:v1.9.5"},
		{SideroMatch, "ghcr.io:443/siderolabs/kubelet:v1.32.3"},
		{"index.docker.io/library/*", "registry-1.docker.io/library/nginx:1"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, refStr string) {
		ref, err := name.ParseReference(refStr)
		if err != nil {
			return
		}
		p := Policy{Name: "f", Match: []string{pattern}, AllowUnsigned: true}
		if p.Validate() != nil {
			return
		}
		got := p.Matches(ref)
		prefix, ok := strings.CutSuffix(pattern, "**")
		if ok && got && prefix != "" && !strings.ContainsAny(prefix, "*?[\\\\") {
			canon := site.CanonicalRegistry(ref.Context().RegistryStr()) + "/" + ref.Context().RepositoryStr()
			if !strings.HasPrefix(canon, canonicalPattern(prefix)) {
				t.Errorf("Policy{Match: %q}.Matches(%q) = true; want false (not under %q)", pattern, refStr, prefix)
			}
		}
	})
}

// FuzzParsePublicKey checks key parsing never panics and fingerprints are 16 hex digits.
func FuzzParsePublicKey(f *testing.F) {
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte(""))
	f.Add([]byte("<html>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParsePublicKey("fuzz", data)
		if err != nil {
			return
		}
		if _, herr := hex.DecodeString(k.Fingerprint); herr != nil || len(k.Fingerprint) != 16 {
			t.Errorf("ParsePublicKey() fingerprint = %q; want 16 hex digits", k.Fingerprint)
		}
	})
}

// FuzzClaimVerifier checks the payload parser never panics and never accepts a payload
// that does not name the digest.
func FuzzClaimVerifier(f *testing.F) {
	const digest = "sha256:" + "ab" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
	f.Add([]byte(`{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"` + digest + `"},"type":"cosign container image signature"},"optional":null}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`not json`))
	h, err := v1.NewHash(digest)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		sig, err := static.NewSignature(payload, "")
		if err != nil {
			return
		}
		if claimVerifier(sig, h, nil) == nil && !strings.Contains(string(payload), digest) {
			t.Errorf("claimVerifier(%q) = nil; want an error for a payload not naming %s", payload, digest)
		}
	})
}
