package verify

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/imgpipe/imgpipe/pipeline/verify/verifytest"
)

// TestCosignLibraryGaps pins down the two cosign library behaviours imgpipe must not
// inherit: without a ClaimVerifier a valid signature of another digest verifies, and an
// empty identity list accepts any certificate chaining to the trust root. If a cosign
// upgrade changes either, this test says so; the verdicts below must hold regardless.
func TestCosignLibraryGaps(t *testing.T) {
	t.Parallel()
	host := verifytest.Registry(t)
	ss := verifytest.NewSigstore(t)
	tr := ss.TrustedRoot(t)
	sv, pemKey := verifytest.NewKey(t)

	donor := verifytest.PushRandom(t, host+"/lib/donor:v1")
	victim := verifytest.PushRandom(t, host+"/lib/victim:v1")
	verifytest.SignWithKey(t, sv, donor, verifytest.SigOpts{Under: &victim})

	stranger := verifytest.PushRandom(t, host+"/lib/stranger:v1")
	ss.SignKeyless(t, stranger, "mallory@example.com", GoogleIssuer, verifytest.SigOpts{})

	ctx := t.Context()
	t.Run("no ClaimVerifier accepts a replayed signature", func(t *testing.T) {
		t.Parallel()
		co := &cosign.CheckOpts{SigVerifier: sv, IgnoreTlog: true, IgnoreSCT: true, Offline: true}
		if _, _, err := cosign.VerifyImageSignatures(ctx, victim, co); err != nil {
			t.Logf("cosign now rejects replayed signatures without a ClaimVerifier: %v", err)
		}
		co.ClaimVerifier = claimVerifier
		_, _, err := cosign.VerifyImageSignatures(ctx, victim, co)
		var noMatch *cosign.ErrNoMatchingSignatures
		if !errors.As(err, &noMatch) {
			t.Errorf("VerifyImageSignatures(%s) with claimVerifier = %v; want ErrNoMatchingSignatures", victim, err)
		}
		v, err := New([]Policy{{Name: "k", Match: []string{"*/lib/**"}, Keys: []Key{mustKey(t, "k.pub", pemKey)}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := v.VerifyImage(ctx, Image{Ref: victim.String()}); got.Verdict != Failed {
			t.Errorf("VerifyImage(%s) = %q (%s); want %q", victim, got.Verdict, got.Reason, Failed)
		}
	})
	t.Run("empty identities accept any signer", func(t *testing.T) {
		t.Parallel()
		co := &cosign.CheckOpts{TrustedMaterial: tr, IgnoreSCT: true, Offline: true, ClaimVerifier: claimVerifier}
		if _, _, err := cosign.VerifyImageSignatures(ctx, stranger, co); err != nil {
			t.Logf("cosign now rejects empty identities: %v", err)
		}
		// imgpipe refuses before calling cosign: at policy validation ...
		if _, err := New([]Policy{{Name: "open", Match: []string{"**"}, Identities: nil}}); !errors.Is(err, ErrNoIdentity) {
			t.Errorf("New(policy without identities) = %v; want ErrNoIdentity", err)
		}
		// ... and again at the call site, whatever the policy says.
		called := false
		v := &Verifier{trust: func(context.Context) (root.TrustedMaterial, error) { called = true; return tr, nil }}
		for _, ids := range [][]Identity{nil, {{}}, {{Issuer: GoogleIssuer}}} {
			a := v.tryKeyless(ctx, stranger, ids, []remote.Option{remote.WithContext(ctx)})
			if a.verdict != Errored || !errors.Is(a.err, ErrNoIdentity) {
				t.Errorf("tryKeyless(%+v) = %q, %v; want %q, ErrNoIdentity", ids, a.verdict, a.err, Errored)
			}
		}
		if called {
			t.Errorf("tryKeyless with an open identity loaded the trust root; want it refused first")
		}
	})
}
