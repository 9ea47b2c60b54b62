package verify

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/imgpipe/imgpipe/pipeline/verify/verifytest"
)

// TestVerifyBundles covers the new signature format: sigstore bundles attached as OCI
// referrers (cosign --new-bundle-format, image-factory GSA signing).
func TestVerifyBundles(t *testing.T) {
	t.Parallel()
	plain := verifytest.Registry(t)                // referrers through the sha256-<hex> tag
	withAPI := verifytest.RegistryWithReferrers(t) // OCI 1.1 referrers API
	bs := verifytest.NewBundleSigstore(t)
	_, factoryPEM := verifytest.NewKey(t)
	factoryKey := mustKey(t, "factory.pub", factoryPEM)
	newV := func(host string) *Verifier {
		v, err := New([]Policy{SideroPolicy(), FactoryPolicy([]string{"factory.test"}, &factoryKey)},
			WithMirror(mirrorTo(host)), WithTrust(staticTrust(bs.TrustedMaterial())), WithRemoteOptions(fastFail))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	vPlain, vAPI := newV(plain), newV(withAPI)
	google := GoogleIssuer
	push := func(t *testing.T, host, ref string) name.Digest {
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mirrorTo(host)(r)
		if err != nil {
			t.Fatal(err)
		}
		return verifytest.PushRandom(t, m.String())
	}

	tests := []struct {
		name       string
		api        bool
		ref        string
		sign       func(t *testing.T, d name.Digest, host string)
		want       Verdict
		wantSigner string
		wantReason string
	}{
		{
			name: "good bundle, referrers tag fallback",
			ref:  "ghcr.io/siderolabs/bundled:v1.12.0",
			sign: func(t *testing.T, d name.Digest, _ string) {
				bs.SignBundle(t, d, "dev@siderolabs.com", google, verifytest.BundleOpts{})
			},
			want: Verified, wantSigner: "dev@siderolabs.com (https://accounts.google.com)",
		},
		{
			name: "good bundle, referrers API",
			api:  true,
			ref:  "ghcr.io/siderolabs/bundled-api:v1.12.0",
			sign: func(t *testing.T, d name.Digest, _ string) {
				bs.SignBundle(t, d, "releasemgr-svc@talos-production.iam.gserviceaccount.com", google, verifytest.BundleOpts{})
			},
			want: Verified,
		},
		{
			name: "factory installer signed by the factory GSA (Rekor v2 + TSA bundle)",
			ref:  "factory.test/installer/gsa-rekor2:v1.12.0",
			sign: func(t *testing.T, d name.Digest, _ string) {
				bs.SignBundle(t, d, FactoryKeylessSubject, google, verifytest.BundleOpts{RekorV2: true})
			},
			want: Verified, wantSigner: FactoryKeylessSubject + " (https://accounts.google.com)",
		},
		{
			name: "factory installer signed by the factory GSA (bundle)",
			ref:  "factory.test/installer/gsa-bundle:v1.12.0",
			sign: func(t *testing.T, d name.Digest, _ string) {
				bs.SignBundle(t, d, FactoryKeylessSubject, google, verifytest.BundleOpts{})
			},
			want: Verified, wantSigner: FactoryKeylessSubject + " (https://accounts.google.com)",
		},
		{
			name: "wrong identity",
			ref:  "ghcr.io/siderolabs/bundle-wrongid:v1.12.0",
			sign: func(t *testing.T, d name.Digest, _ string) {
				bs.SignBundle(t, d, "mallory@example.com", google, verifytest.BundleOpts{})
			},
			want: Failed, wantReason: "sigstore bundle",
		},
		{
			name: "wrong issuer",
			ref:  "factory.test/installer/bundle-wrongissuer:v1.12.0",
			sign: func(t *testing.T, d name.Digest, _ string) {
				bs.SignBundle(t, d, FactoryKeylessSubject, "https://token.actions.githubusercontent.com", verifytest.BundleOpts{})
			},
			want: Failed, wantReason: "sigstore bundle",
		},
		{
			name: "valid bundle of another digest attached to this image",
			ref:  "ghcr.io/siderolabs/bundle-replayed:v1.12.0",
			sign: func(t *testing.T, d name.Digest, host string) {
				other := push(t, host, "ghcr.io/siderolabs/bundle-donor:v1.12.0")
				bs.SignBundle(t, other, "dev@siderolabs.com", google, verifytest.BundleOpts{Under: &d})
			},
			want: Failed, wantReason: "sigstore bundle",
		},
		{
			name: "tampered statement",
			ref:  "ghcr.io/siderolabs/bundle-tampered:v1.12.0",
			sign: func(t *testing.T, d name.Digest, _ string) {
				bs.SignBundle(t, d, "dev@siderolabs.com", google, verifytest.BundleOpts{Tamper: true})
			},
			want: Failed, wantReason: "sigstore bundle",
		},
		{
			name: "an attestation is not a signature",
			ref:  "ghcr.io/siderolabs/bundle-sbom:v1.12.0",
			sign: func(t *testing.T, d name.Digest, _ string) {
				bs.SignBundle(t, d, "dev@siderolabs.com", google, verifytest.BundleOpts{PredicateType: "https://spdx.dev/Document"})
			},
			want: Failed, wantReason: "is an attestation (https://spdx.dev/Document), not a signature",
		},
		{
			name: "neither .sig nor bundle",
			ref:  "ghcr.io/siderolabs/bundle-none:v1.12.0",
			sign: func(*testing.T, name.Digest, string) {},
			want: Missing, wantReason: "no sigstore bundle referrer",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			host, v := plain, vPlain
			if tc.api {
				host, v = withAPI, vAPI
			}
			d := push(t, host, tc.ref)
			tc.sign(t, d, host)
			got := v.VerifyImage(t.Context(), Image{Ref: tc.ref, Digest: d.DigestStr(), Role: RoleExtension})
			if got.Verdict != tc.want {
				t.Fatalf("VerifyImage(%q) verdict = %q (reason %q); want %q", tc.ref, got.Verdict, got.Reason, tc.want)
			}
			if tc.want == Verified && got.Format != FormatBundle {
				t.Errorf("VerifyImage(%q) format = %q; want %q", tc.ref, got.Format, FormatBundle)
			}
			if !strings.Contains(got.Signer, tc.wantSigner) {
				t.Errorf("VerifyImage(%q) signer = %q; want it to contain %q", tc.ref, got.Signer, tc.wantSigner)
			}
			if !strings.Contains(got.Reason, tc.wantReason) {
				t.Errorf("VerifyImage(%q) reason = %q; want it to contain %q", tc.ref, got.Reason, tc.wantReason)
			}
		})
	}
}

// TestVerifyKeyBundles covers `cosign sign --key` in the new bundle format (cosign v3's
// default), checked against a policy key without a transparency log.
func TestVerifyKeyBundles(t *testing.T) {
	t.Parallel()
	host := verifytest.Registry(t)
	sv, pemKey := verifytest.NewKey(t)
	otherSV, _ := verifytest.NewKey(t)
	key := mustKey(t, "site.pub", pemKey)
	v, err := New([]Policy{{Name: "site", Match: []string{"*/site/**"}, Keys: []Key{key}}}, WithRemoteOptions(fastFail))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		sign       func(t *testing.T, d name.Digest)
		want       Verdict
		wantReason string
	}{
		{name: "good key bundle", sign: func(t *testing.T, d name.Digest) {
			verifytest.SignBundleWithKey(t, sv, d, verifytest.BundleOpts{})
		}, want: Verified},
		{name: "wrong key", sign: func(t *testing.T, d name.Digest) {
			verifytest.SignBundleWithKey(t, otherSV, d, verifytest.BundleOpts{})
		}, want: Failed, wantReason: "sigstore bundle"},
		{name: "bundle of another digest", sign: func(t *testing.T, d name.Digest) {
			other := verifytest.PushRandom(t, host+"/site/donor:v1")
			verifytest.SignBundleWithKey(t, sv, other, verifytest.BundleOpts{Under: &d})
		}, want: Failed, wantReason: "digest"},
		{name: "tampered statement", sign: func(t *testing.T, d name.Digest) {
			verifytest.SignBundleWithKey(t, sv, d, verifytest.BundleOpts{Tamper: true})
		}, want: Failed, wantReason: "sigstore bundle"},
		{name: "attestation, not a signature", sign: func(t *testing.T, d name.Digest) {
			verifytest.SignBundleWithKey(t, sv, d, verifytest.BundleOpts{PredicateType: "https://slsa.dev/provenance/v1"})
		}, want: Failed, wantReason: "not a signature"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ref := host + "/site/img" + string(rune('a'+i)) + ":v1"
			d := verifytest.PushRandom(t, ref)
			tc.sign(t, d)
			got := v.VerifyImage(t.Context(), Image{Ref: ref, Digest: d.DigestStr()})
			if got.Verdict != tc.want {
				t.Fatalf("VerifyImage(%q) = %q (%s); want %q", ref, got.Verdict, got.Reason, tc.want)
			}
			if !strings.Contains(got.Reason, tc.wantReason) {
				t.Errorf("VerifyImage(%q) reason = %q; want it to contain %q", ref, got.Reason, tc.wantReason)
			}
			if tc.want == Verified && (got.Format != FormatBundle || got.Signer != key.String()) {
				t.Errorf("VerifyImage(%q) = format %q signer %q; want %q by %q", ref, got.Format, got.Signer, FormatBundle, key.String())
			}
		})
	}
}
