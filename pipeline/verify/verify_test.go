package verify

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/pipeline/verify/verifytest"
)

// mirrorTo reads every non-local reference from host under /<upstream-host>/<repo>
// (the overridePath layout), the way a site mirror serves it.
func mirrorTo(host string) MirrorFunc {
	return func(ref name.Reference) (name.Reference, error) {
		if ref.Context().RegistryStr() == host {
			return ref, nil
		}
		repo, err := name.NewRepository(host + "/" + ref.Context().RegistryStr() + "/" + ref.Context().RepositoryStr())
		if err != nil {
			return nil, err
		}
		switch r := ref.(type) {
		case name.Digest:
			return repo.Digest(r.DigestStr()), nil
		case name.Tag:
			return repo.Tag(r.TagStr()), nil
		}
		return nil, errors.New("unknown reference type")
	}
}

func staticTrust(tm root.TrustedMaterial) TrustFunc {
	return func(context.Context) (root.TrustedMaterial, error) { return tm, nil }
}

// fastFail keeps tests of unreachable registries from sitting in ggcr's retry backoff.
var fastFail = remote.WithRetryBackoff(remote.Backoff{Steps: 1})

// TestVerify covers every verdict the issue asks for (and a few more), with an in-process
// registry, keys generated here and a test CA + Rekor key standing in for Fulcio/Rekor.
func TestVerify(t *testing.T) {
	t.Parallel()
	host := verifytest.Registry(t)
	up := func(ref string) string { // where an upstream ref lives in the test mirror
		parsed, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		r, err := mirrorTo(host)(parsed)
		if err != nil {
			t.Fatal(err)
		}
		return r.String()
	}
	ss := verifytest.NewSigstore(t)
	goodSV, goodPEM := verifytest.NewKey(t)
	otherSV, _ := verifytest.NewKey(t)
	factorySV, factoryPEM := verifytest.NewKey(t)
	goodKey := mustKey(t, "good.pub", goodPEM)
	factoryKey := mustKey(t, "factory.pub", factoryPEM)

	policies := []Policy{
		{Name: "keyed", Match: []string{"*/keyed/**"}, Keys: []Key{goodKey}},
		{Name: "optional", Match: []string{"*/optional/**"}, Keys: []Key{goodKey}, AllowUnsigned: true},
		SideroPolicy(),
		FactoryPolicy([]string{"factory.test"}, &factoryKey),
	}
	v, err := New(policies, WithMirror(mirrorTo(host)), WithTrust(staticTrust(ss.TrustedRoot(t))), WithRemoteOptions(fastFail))
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	google := GoogleIssuer
	keyed := func(n string) string { return host + "/keyed/" + n + ":v1" }
	sidero := func(n string) string { return "ghcr.io/siderolabs/" + n + ":v1.9.5" }

	tests := []struct {
		name string
		// setup pushes the image and its signatures and returns the image to check.
		setup       func(t *testing.T) Image
		want        Verdict
		wantSigner  string // substring
		wantReason  string // substring
		wantUnpined bool
	}{
		{
			name: "good key signature",
			setup: func(t *testing.T) Image {
				d := verifytest.PushRandom(t, keyed("good"))
				verifytest.SignWithKey(t, goodSV, d, verifytest.SigOpts{})
				return Image{Ref: keyed("good"), Digest: d.DigestStr(), Role: "test"}
			},
			want: Verified, wantSigner: "key good.pub (sha256:" + goodKey.Fingerprint + ")",
		},
		{
			name: "good keyless signature (siderolabs.com account)",
			setup: func(t *testing.T) Image {
				d := verifytest.PushRandom(t, up(sidero("goodkeyless")))
				ss.SignKeyless(t, d, "andrey.smirnov@siderolabs.com", google, verifytest.SigOpts{})
				return Image{Ref: sidero("goodkeyless"), Digest: d.DigestStr(), Role: RoleExtension}
			},
			want: Verified, wantSigner: "andrey.smirnov@siderolabs.com (https://accounts.google.com)",
		},
		{
			name: "good keyless signature (release GSA)",
			setup: func(t *testing.T) Image {
				d := verifytest.PushRandom(t, up(sidero("gsa")))
				ss.SignKeyless(t, d, "releasemgr-svc@talos-production.iam.gserviceaccount.com", google, verifytest.SigOpts{})
				return Image{Ref: sidero("gsa"), Digest: d.DigestStr(), Role: RoleExtension}
			},
			want: Verified, wantSigner: "releasemgr-svc@talos-production.iam.gserviceaccount.com",
		},
		{
			name: "unpinned image resolves its tag and verifies",
			setup: func(t *testing.T) Image {
				d := verifytest.PushRandom(t, up(sidero("unpinned")))
				ss.SignKeyless(t, d, "dev@siderolabs.com", google, verifytest.SigOpts{})
				return Image{Ref: sidero("unpinned"), Role: RoleExtension}
			},
			want: Verified, wantUnpined: true,
		},
		{
			name: "wrong key",
			setup: func(t *testing.T) Image {
				d := verifytest.PushRandom(t, keyed("wrongkey"))
				verifytest.SignWithKey(t, otherSV, d, verifytest.SigOpts{})
				return Image{Ref: keyed("wrongkey"), Digest: d.DigestStr()}
			},
			want: Failed, wantReason: "invalid signature",
		},
		{
			name: "wrong identity",
			setup: func(t *testing.T) Image {
				d := verifytest.PushRandom(t, up(sidero("wrongid")))
				ss.SignKeyless(t, d, "mallory@example.com", google, verifytest.SigOpts{})
				return Image{Ref: sidero("wrongid"), Digest: d.DigestStr()}
			},
			want: Failed, wantReason: "none of the expected identities matched", wantSigner: "want ~" + SideroSubjectRegExp,
		},
		{
			name: "look-alike identity",
			setup: func(t *testing.T) Image {
				d := verifytest.PushRandom(t, up(sidero("lookalike")))
				ss.SignKeyless(t, d, "dev@siderolabs.com.evil.example", google, verifytest.SigOpts{})
				return Image{Ref: sidero("lookalike"), Digest: d.DigestStr()}
			},
			want: Failed, wantReason: "none of the expected identities matched",
		},
		{
			name: "wrong issuer",
			setup: func(t *testing.T) Image {
				d := verifytest.PushRandom(t, up(sidero("wrongissuer")))
				ss.SignKeyless(t, d, "dev@siderolabs.com", "https://token.actions.githubusercontent.com", verifytest.SigOpts{})
				return Image{Ref: sidero("wrongissuer"), Digest: d.DigestStr()}
			},
			want: Failed, wantReason: "with issuer https://token.actions.githubusercontent.com",
		},
		{
			name: "valid key signature of another digest under this image's tag",
			setup: func(t *testing.T) Image {
				other := verifytest.PushRandom(t, keyed("donor"))
				d := verifytest.PushRandom(t, keyed("replayed"))
				verifytest.SignWithKey(t, goodSV, other, verifytest.SigOpts{Under: &d})
				return Image{Ref: keyed("replayed"), Digest: d.DigestStr()}
			},
			want: Failed, wantReason: ErrClaimMismatch.Error(),
		},
		{
			name: "valid keyless signature of another digest under this image's tag",
			setup: func(t *testing.T) Image {
				other := verifytest.PushRandom(t, up(sidero("donor")))
				d := verifytest.PushRandom(t, up(sidero("replayedkeyless")))
				ss.SignKeyless(t, other, "dev@siderolabs.com", google, verifytest.SigOpts{Under: &d})
				return Image{Ref: sidero("replayedkeyless"), Digest: d.DigestStr()}
			},
			want: Failed, wantReason: ErrClaimMismatch.Error(),
		},
		{
			name: "missing signature",
			setup: func(t *testing.T) Image {
				d := verifytest.PushRandom(t, keyed("unsigned"))
				return Image{Ref: keyed("unsigned"), Digest: d.DigestStr()}
			},
			want: Missing, wantReason: "no signature",
		},
		{
			name: "missing keyless signature",
			setup: func(t *testing.T) Image {
				d := verifytest.PushRandom(t, up(sidero("unsigned")))
				return Image{Ref: sidero("unsigned"), Digest: d.DigestStr()}
			},
			want: Missing, wantReason: "no signature",
		},
		{
			name: "tampered payload (key)",
			setup: func(t *testing.T) Image {
				d := verifytest.PushRandom(t, keyed("tampered"))
				verifytest.SignWithKey(t, goodSV, d, verifytest.SigOpts{Tamper: true})
				return Image{Ref: keyed("tampered"), Digest: d.DigestStr()}
			},
			want: Failed, wantReason: "invalid signature",
		},
		{
			name: "tampered payload (keyless)",
			setup: func(t *testing.T) Image {
				d := verifytest.PushRandom(t, up(sidero("tampered")))
				ss.SignKeyless(t, d, "dev@siderolabs.com", google, verifytest.SigOpts{Tamper: true})
				return Image{Ref: sidero("tampered"), Digest: d.DigestStr()}
			},
			want: Failed,
		},
		{
			name: "keyless signature without a Rekor entry",
			setup: func(t *testing.T) Image {
				d := verifytest.PushRandom(t, up(sidero("notlogged")))
				ss.SignKeyless(t, d, "dev@siderolabs.com", google, verifytest.SigOpts{NoBundle: true})
				return Image{Ref: sidero("notlogged"), Digest: d.DigestStr()}
			},
			want: Failed, wantReason: "offline verification failed",
		},
		{
			name: "key signature where the policy wants a keyless identity",
			setup: func(t *testing.T) Image {
				d := verifytest.PushRandom(t, up(sidero("keysigned")))
				verifytest.SignWithKey(t, goodSV, d, verifytest.SigOpts{})
				return Image{Ref: sidero("keysigned"), Digest: d.DigestStr()}
			},
			want: Failed,
		},
		{
			name: "factory installer signed with the factory key",
			setup: func(t *testing.T) Image {
				ref := "factory.test/installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:v1.9.5"
				d := verifytest.PushRandom(t, up(ref))
				verifytest.SignWithKey(t, factorySV, d, verifytest.SigOpts{})
				return Image{Ref: ref, Role: RoleFactoryInstaller}
			},
			want: Verified, wantSigner: "key factory.pub", wantUnpined: true,
		},
		{
			name: "factory installer signed keyless by the factory GSA",
			setup: func(t *testing.T) Image {
				ref := "factory.test/installer/gsa:v1.9.5"
				d := verifytest.PushRandom(t, up(ref))
				ss.SignKeyless(t, d, FactoryKeylessSubject, google, verifytest.SigOpts{})
				return Image{Ref: ref, Digest: d.DigestStr(), Role: RoleFactoryInstaller}
			},
			want: Verified, wantSigner: FactoryKeylessSubject,
		},
		{
			name: "factory installer signed by a Sidero account is not the factory",
			setup: func(t *testing.T) Image {
				ref := "factory.test/installer/impostor:v1.9.5"
				d := verifytest.PushRandom(t, up(ref))
				ss.SignKeyless(t, d, "dev@siderolabs.com", google, verifytest.SigOpts{})
				return Image{Ref: ref, Digest: d.DigestStr(), Role: RoleFactoryInstaller}
			},
			want: Failed, wantReason: "none of the expected identities matched",
		},
		{
			name: "allowUnsigned lets a missing signature pass",
			setup: func(t *testing.T) Image {
				d := verifytest.PushRandom(t, host+"/optional/nosig:v1")
				return Image{Ref: host + "/optional/nosig:v1", Digest: d.DigestStr()}
			},
			want: UnsignedAllowed,
		},
		{
			name: "allowUnsigned does not excuse a bad signature",
			setup: func(t *testing.T) Image {
				d := verifytest.PushRandom(t, host+"/optional/badsig:v1")
				verifytest.SignWithKey(t, otherSV, d, verifytest.SigOpts{})
				return Image{Ref: host + "/optional/badsig:v1", Digest: d.DigestStr()}
			},
			want: Failed,
		},
		{
			name: "image no policy covers is skipped without a registry call",
			setup: func(t *testing.T) Image {
				return Image{Ref: "registry.k8s.io/kube-apiserver:v1.32.3", Role: "apiserver"}
			},
			want: Skipped, wantReason: "no signature policy covers registry.k8s.io/kube-apiserver",
		},
		{
			name: "extension no policy covers fails closed",
			setup: func(t *testing.T) Image {
				return Image{Ref: "quay.io/acme/custom-ext:v1", Role: RoleExtension}
			},
			want: Failed, wantReason: "extension images must be verified",
		},
		{
			name: "factory installer of an unknown factory fails closed",
			setup: func(t *testing.T) Image {
				return Image{Ref: "factory.other.example/installer/abc:v1.9.5", Role: RoleFactoryInstaller}
			},
			want: Failed, wantReason: "factory-installer images must be verified",
		},
		{
			name: "pinned digest absent from the registry",
			setup: func(t *testing.T) Image {
				return Image{Ref: keyed("ghost"), Digest: "sha256:" + strings.Repeat("ab", 32)}
			},
			want: Errored, wantReason: "not found",
		},
		{
			name: "malformed pinned digest",
			setup: func(t *testing.T) Image {
				return Image{Ref: keyed("x"), Digest: "sha256:nothex"}
			},
			want: Errored, wantReason: "pinned digest",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := tc.setup(t)
			got := v.VerifyImage(t.Context(), img)
			if got.Verdict != tc.want {
				t.Fatalf("VerifyImage(%q) verdict = %q (reason %q); want %q", img.Ref, got.Verdict, got.Reason, tc.want)
			}
			if !strings.Contains(got.Signer, tc.wantSigner) {
				t.Errorf("VerifyImage(%q) signer = %q; want it to contain %q", img.Ref, got.Signer, tc.wantSigner)
			}
			if !strings.Contains(got.Reason, tc.wantReason) {
				t.Errorf("VerifyImage(%q) reason = %q; want it to contain %q", img.Ref, got.Reason, tc.wantReason)
			}
			if tc.want == Skipped || tc.want == Errored || got.Policy == "" {
				return
			}
			if got.Pinned == tc.wantUnpined {
				t.Errorf("VerifyImage(%q) pinned = %v; want %v", img.Ref, got.Pinned, !tc.wantUnpined)
			}
			if !strings.HasPrefix(got.Digest, "sha256:") || (img.Digest != "" && got.Digest != img.Digest) {
				t.Errorf("VerifyImage(%q) digest = %q; want the image's digest %q", img.Ref, got.Digest, img.Digest)
			}
			if img.Ref != got.Image {
				t.Errorf("VerifyImage(%q) image = %q; want the lock's reference", img.Ref, got.Image)
			}
			if !strings.HasPrefix(img.Ref, host+"/") && !strings.HasPrefix(got.Source, host+"/") {
				t.Errorf("VerifyImage(%q) source = %q; want it read through the mirror %s", img.Ref, got.Source, host)
			}
		})
	}
}

func TestVerifyUnreachableRegistry(t *testing.T) {
	t.Parallel()
	dead := verifytest.ClosedAddr(t)
	_, pemKey := verifytest.NewKey(t)
	ss := verifytest.NewSigstore(t)
	v, err := New([]Policy{SideroPolicy(), {Name: "keyed", Match: []string{"*/keyed/**"}, Keys: []Key{mustKey(t, "k.pub", pemKey)}}},
		WithMirror(mirrorTo(dead)), WithTrust(staticTrust(ss.TrustedRoot(t))), WithRemoteOptions(fastFail))
	if err != nil {
		t.Fatal(err)
	}
	images := []Image{
		{Ref: "ghcr.io/siderolabs/installer:v1.9.5"},
		{Ref: "ghcr.io/siderolabs/iscsi-tools:v0.1.6", Digest: "sha256:" + strings.Repeat("0", 64)},
		{Ref: dead + "/keyed/x:v1"},
	}
	rep, err := v.Verify(t.Context(), images)
	if err != nil {
		t.Fatalf("Verify() error = %v", err)
	}
	for i, r := range rep.Results {
		if r.Verdict != Errored {
			t.Errorf("Verify(%q) verdict = %q (reason %q); want %q", images[i].Ref, r.Verdict, r.Reason, Errored)
		}
		if !strings.Contains(r.Reason, "connection refused") {
			t.Errorf("Verify(%q) reason = %q; want the connection error", images[i].Ref, r.Reason)
		}
	}
	err = rep.Err()
	if !errors.Is(err, ErrUnverifiable) || errors.Is(err, fail.ErrPolicy) {
		t.Errorf("Report.Err() = %v; want ErrUnverifiable (exit 1), not a policy failure", err)
	}
}

func TestReportErr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		verdicts   []Verdict
		wantPolicy bool
		wantUnver  bool
	}{
		{verdicts: []Verdict{Verified, Skipped, UnsignedAllowed}},
		{verdicts: []Verdict{Verified, Failed}, wantPolicy: true},
		{verdicts: []Verdict{Missing}, wantPolicy: true},
		{verdicts: []Verdict{Errored, Verified}, wantUnver: true},
		{verdicts: []Verdict{Errored, Missing}, wantPolicy: true},
		{verdicts: nil},
	}
	for _, tc := range tests {
		var results []Result
		for i, v := range tc.verdicts {
			results = append(results, Result{Image: string(rune('a' + i)), Verdict: v})
		}
		err := newReport(results, false).Err()
		if got := errors.Is(err, fail.ErrPolicy) && errors.Is(err, ErrVerification); got != tc.wantPolicy {
			t.Errorf("Report%v.Err() = %v; want policy failure %v", tc.verdicts, err, tc.wantPolicy)
		}
		if got := errors.Is(err, ErrUnverifiable); got != tc.wantUnver {
			t.Errorf("Report%v.Err() = %v; want unverifiable %v", tc.verdicts, err, tc.wantUnver)
		}
		if (err == nil) != (!tc.wantPolicy && !tc.wantUnver) {
			t.Errorf("Report%v.Err() = %v; want nil: %v", tc.verdicts, err, !tc.wantPolicy && !tc.wantUnver)
		}
	}
}

func mustKey(t *testing.T, name string, pemKey []byte) Key {
	t.Helper()
	k, err := ParsePublicKey(name, pemKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
