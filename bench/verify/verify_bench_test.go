package verifybench

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/imgpipe/imgpipe/pipeline/verify"
	"github.com/imgpipe/imgpipe/pipeline/verify/verifytest"
)

// fixture is one registry holding n images of each kind, all validly signed.
type fixture struct {
	host                   string
	keyed, keyless, bundle []name.Digest
	keySV                  signature.SignerVerifier
	key                    verify.Key
	legacyRoot             root.TrustedMaterial
	bundleRoot             root.TrustedMaterial
	requests               *atomic.Int64
}

type countingTransport struct {
	n    *atomic.Int64
	next http.RoundTripper
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

func newFixture(b *testing.B, n int) *fixture {
	b.Helper()
	f := &fixture{host: verifytest.Registry(b), requests: new(atomic.Int64)}
	sv, pemKey := verifytest.NewKey(b)
	k, err := verify.ParsePublicKey("bench.pub", pemKey)
	if err != nil {
		b.Fatal(err)
	}
	f.keySV, f.key = sv, k
	ss := verifytest.NewSigstore(b)
	bs := verifytest.NewBundleSigstore(b)
	f.legacyRoot, f.bundleRoot = ss.TrustedRoot(b), bs.TrustedMaterial()
	for i := range n {
		d := verifytest.PushRandom(b, fmt.Sprintf("%s/keyed/img%d:v1", f.host, i))
		verifytest.SignWithKey(b, sv, d, verifytest.SigOpts{})
		f.keyed = append(f.keyed, d)
		d = verifytest.PushRandom(b, fmt.Sprintf("%s/keyless/img%d:v1", f.host, i))
		ss.SignKeyless(b, d, "dev@siderolabs.com", verify.GoogleIssuer, verifytest.SigOpts{})
		f.keyless = append(f.keyless, d)
		d = verifytest.PushRandom(b, fmt.Sprintf("%s/bundle/img%d:v1", f.host, i))
		bs.SignBundle(b, d, "dev@siderolabs.com", verify.GoogleIssuer, verifytest.BundleOpts{})
		f.bundle = append(f.bundle, d)
	}
	return f
}

func (f *fixture) transport() remote.Option {
	return remote.WithTransport(countingTransport{n: f.requests, next: http.DefaultTransport})
}

var sidero = verify.Identity{Issuer: verify.GoogleIssuer, SubjectRegExp: verify.SideroSubjectRegExp}

func (f *fixture) verifier(b *testing.B, tm root.TrustedMaterial, jobs int) *verify.Verifier {
	b.Helper()
	v, err := verify.New([]verify.Policy{
		{Name: "keyed", Match: []string{"*/keyed/**"}, Keys: []verify.Key{f.key}},
		{Name: "keyless", Match: []string{"*/keyless/**", "*/bundle/**"}, Identities: []verify.Identity{sidero}},
	}, verify.WithTrust(func(context.Context) (root.TrustedMaterial, error) { return tm, nil }),
		verify.WithRemoteOptions(f.transport()), verify.WithJobs(jobs))
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// cosignKey is what `cosign verify --key K --insecure-ignore-tlog` does per image.
func (f *fixture) cosignKey(ctx context.Context, d name.Digest) error {
	co := &cosign.CheckOpts{
		RegistryClientOpts: []ociremote.Option{ociremote.WithRemoteOptions(remote.WithContext(ctx), f.transport())},
		SigVerifier:        f.keySV, IgnoreTlog: true, IgnoreSCT: true, Offline: true,
		ClaimVerifier: cosign.SimpleClaimVerifier,
	}
	_, _, err := cosign.VerifyImageSignatures(ctx, d, co)
	return err
}

// cosignKeyless is `cosign verify --offline --trusted-root R --certificate-identity-regexp ...`.
func (f *fixture) cosignKeyless(ctx context.Context, d name.Digest) error {
	co := &cosign.CheckOpts{
		RegistryClientOpts: []ociremote.Option{ociremote.WithRemoteOptions(remote.WithContext(ctx), f.transport())},
		TrustedMaterial:    f.legacyRoot, IgnoreSCT: true, Offline: true,
		Identities:    []cosign.Identity{{Issuer: sidero.Issuer, SubjectRegExp: sidero.SubjectRegExp}},
		ClaimVerifier: cosign.SimpleClaimVerifier,
	}
	_, _, err := cosign.VerifyImageSignatures(ctx, d, co)
	return err
}

// cosignBundle is `cosign verify --new-bundle-format ...`: GetBundles + VerifyNewBundle.
func (f *fixture) cosignBundle(ctx context.Context, d name.Digest) error {
	co := &cosign.CheckOpts{
		RegistryClientOpts: []ociremote.Option{ociremote.WithRemoteOptions(remote.WithContext(ctx), f.transport())},
		TrustedMaterial:    f.bundleRoot, IgnoreSCT: true, NewBundleFormat: true,
		Identities: []cosign.Identity{{Issuer: sidero.Issuer, SubjectRegExp: sidero.SubjectRegExp}},
	}
	bundles, h, err := cosign.GetBundles(ctx, d, co)
	if err != nil {
		return err
	}
	raw, err := hex.DecodeString(h.Hex)
	if err != nil {
		return err
	}
	_, err = cosign.VerifyNewBundle(ctx, co, sgverify.WithArtifactDigest(h.Algorithm, raw), bundles[0])
	return err
}

func BenchmarkVerifyImage(b *testing.B) {
	f := newFixture(b, 1)
	kinds := []struct {
		name   string
		d      name.Digest
		tm     root.TrustedMaterial
		cosign func(context.Context, name.Digest) error
	}{
		{"key-sig", f.keyed[0], f.legacyRoot, f.cosignKey},
		{"keyless-sig", f.keyless[0], f.legacyRoot, f.cosignKeyless},
		{"keyless-bundle", f.bundle[0], f.bundleRoot, f.cosignBundle},
	}
	for _, k := range kinds {
		v := f.verifier(b, k.tm, 1)
		img := verify.Image{Ref: k.d.String()}
		b.Run(k.name+"/imgpipe", func(b *testing.B) {
			f.requests.Store(0)
			for b.Loop() {
				if r := v.VerifyImage(b.Context(), img); r.Verdict != verify.Verified {
					b.Fatalf("VerifyImage(%s) = %s: %s", img.Ref, r.Verdict, r.Reason)
				}
			}
			b.ReportMetric(float64(f.requests.Load())/float64(b.N), "req/op")
		})
		b.Run(k.name+"/cosign", func(b *testing.B) {
			f.requests.Store(0)
			for b.Loop() {
				if err := k.cosign(b.Context(), k.d); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(f.requests.Load())/float64(b.N), "req/op")
		})
	}
}

// BenchmarkVerifyLock checks 60 images (20 of each kind), as a lock of that size would:
// imgpipe with 1 and 4 parallel jobs, cosign one image after another (the CLI verifies
// its arguments sequentially).
func BenchmarkVerifyLock(b *testing.B) {
	const n = 20
	f := newFixture(b, n)
	var images []verify.Image
	for _, set := range [][]name.Digest{f.keyed, f.keyless, f.bundle} {
		for _, d := range set {
			images = append(images, verify.Image{Ref: d.String()})
		}
	}
	for _, jobs := range []int{1, 4} {
		// Keyless .sig and bundles need different test roots; a real site has one root.
		// Give each its own verifier and run them back to back.
		vLegacy, vBundle := f.verifier(b, f.legacyRoot, jobs), f.verifier(b, f.bundleRoot, jobs)
		b.Run(fmt.Sprintf("imgpipe-jobs%d", jobs), func(b *testing.B) {
			for b.Loop() {
				for _, part := range []struct {
					v    *verify.Verifier
					imgs []verify.Image
				}{{vLegacy, images[:2*n]}, {vBundle, images[2*n:]}} {
					rep, err := part.v.Verify(b.Context(), part.imgs)
					if err != nil || rep.Err() != nil {
						b.Fatalf("Verify() = %v, %v", err, rep.Err())
					}
				}
			}
			b.ReportMetric(float64(b.N*len(images))/b.Elapsed().Seconds(), "images/s")
		})
	}
	b.Run("cosign-serial", func(b *testing.B) {
		for b.Loop() {
			for i, d := range f.keyed {
				if err := f.cosignKey(b.Context(), d); err != nil {
					b.Fatal(err)
				}
				if err := f.cosignKeyless(b.Context(), f.keyless[i]); err != nil {
					b.Fatal(err)
				}
				if err := f.cosignBundle(b.Context(), f.bundle[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*len(images))/b.Elapsed().Seconds(), "images/s")
	})
}
