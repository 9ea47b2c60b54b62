package verify

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
)

// referrerBundles fetches an image's sigstore bundles (OCI referrers, or the
// sha256-<hex> referrers tag) once, for both the key and the keyless checks.
type referrerBundles struct {
	ref   name.Digest
	ropts []remote.Option

	once    sync.Once
	list    []*sgbundle.Bundle
	digest  v1.Hash
	verdict Verdict // Missing or Errored when list is empty
	err     error
}

func (b *referrerBundles) get(ctx context.Context) ([]*sgbundle.Bundle, v1.Hash, Verdict, error) {
	b.once.Do(func() {
		co := newCheckOpts(b.ropts)
		list, h, err := cosign.GetBundles(ctx, b.ref, co)
		var noAtt *cosign.ErrNoMatchingAttestations
		switch {
		case errors.As(err, &noAtt):
			b.verdict, b.err = Missing, err
		case err != nil:
			b.verdict, b.err = Errored, errors.New(describeRegistryError("reading referrers", err))
		case len(list) == 0:
			b.verdict = Missing
		default:
			b.list, b.digest = list, *h
		}
	})
	return b.list, b.digest, b.verdict, b.err
}

func (b *referrerBundles) artifact(ctx context.Context) ([]*sgbundle.Bundle, sgverify.ArtifactPolicyOption, Verdict, error) {
	list, h, verdict, err := b.get(ctx)
	if len(list) == 0 {
		return nil, nil, verdict, err
	}
	raw, err := hex.DecodeString(h.Hex)
	if err != nil {
		return nil, nil, Errored, err
	}
	return list, sgverify.WithArtifactDigest(h.Algorithm, raw), "", nil
}

// tryBundles verifies sigstore bundles attached as referrers, keyless. It calls
// sigstore-go directly rather than cosign.VerifyNewBundle, for two reasons: every identity
// can be offered at once (cosign takes exactly one), and a bundle's time may come from
// the Rekor v1 integrated time or from a TSA timestamp (Rekor v2, image-factory GSA
// signing), which cosign only accepts with an explicit flag. sigstore-go binds the
// statement's subject to the digest; imgpipe also requires the cosign-sign predicate, so
// an SBOM or provenance attestation by the same signer does not count as a signature.
func (v *Verifier) tryBundles(ctx context.Context, bundles *referrerBundles, ids []Identity) attempt {
	want := make([]string, len(ids))
	for i, id := range ids {
		want[i] = id.String()
	}
	expected := strings.Join(want, " or ")
	fail := func(verdict Verdict, err error) attempt {
		return attempt{signer: expected, format: FormatBundle, verdict: verdict, err: err}
	}
	list, artifact, verdict, err := bundles.artifact(ctx)
	if len(list) == 0 {
		return fail(verdict, err)
	}
	tm, err := v.trustedMaterial(ctx)
	if err != nil {
		return fail(Errored, err)
	}
	vopts := []sgverify.VerifierOption{sgverify.WithTransparencyLog(1), sgverify.WithObserverTimestamps(1)}
	if len(tm.CTLogs()) > 0 {
		vopts = append(vopts, sgverify.WithSignedCertificateTimestamps(1))
	}
	verifier, err := sgverify.NewVerifier(tm, vopts...)
	if err != nil {
		return fail(Errored, fmt.Errorf("setting up the bundle verifier: %w", err))
	}
	var popts []sgverify.PolicyOption
	for _, id := range ids {
		ci, err := sgverify.NewShortCertificateIdentity(id.Issuer, id.IssuerRegExp, id.Subject, id.SubjectRegExp)
		if err != nil {
			return fail(Errored, fmt.Errorf("identity %s: %w", id, err))
		}
		popts = append(popts, sgverify.WithCertificateIdentity(ci))
	}
	res, err := verifyBundles(list, verifier, sgverify.NewPolicy(artifact, popts...))
	if err != nil {
		v.log.Debug("bundle check", "image", bundles.ref.String(), "err", err)
		return fail(Failed, err)
	}
	signer := expected
	if res.Signature != nil && res.Signature.Certificate != nil {
		c := res.Signature.Certificate
		signer = c.SubjectAlternativeName + " (" + c.Issuer + ")"
	}
	return attempt{signer: signer, format: FormatBundle, verdict: Verified}
}

// tryKeyBundles verifies bundles signed with one of the policy's keys (`cosign sign
// --key` in the new format, cosign v3's default). As for key-signed .sig tags, the
// transparency log is not required: the key is the trust anchor.
func (v *Verifier) tryKeyBundles(ctx context.Context, bundles *referrerBundles, keys []Key) attempt {
	want := make([]string, len(keys))
	for i, k := range keys {
		want[i] = k.String()
	}
	expected := strings.Join(want, " or ")
	list, artifact, verdict, err := bundles.artifact(ctx)
	if len(list) == 0 {
		return attempt{signer: expected, format: FormatBundle, verdict: verdict, err: err}
	}
	var errs []error
	for _, k := range keys {
		key := root.NewExpiringKey(k.verifier, time.Time{}, time.Time{})
		tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return key, nil })
		verifier, err := sgverify.NewVerifier(tm, sgverify.WithNoObserverTimestamps())
		if err != nil {
			return attempt{signer: expected, format: FormatBundle, verdict: Errored, err: err}
		}
		if _, err := verifyBundles(list, verifier, sgverify.NewPolicy(artifact, sgverify.WithKey())); err != nil {
			if len(keys) > 1 {
				err = fmt.Errorf("%s: %w", k, err)
			}
			errs = append(errs, err)
			continue
		}
		return attempt{signer: k.String(), format: FormatBundle, verdict: Verified}
	}
	return attempt{signer: expected, format: FormatBundle, verdict: Failed, err: errors.Join(errs...)}
}

// verifyBundles returns the first bundle that verifies under policy and is a signature
// (cosign-sign predicate), or why none did.
func verifyBundles(list []*sgbundle.Bundle, verifier *sgverify.Verifier, policy sgverify.PolicyBuilder) (*sgverify.VerificationResult, error) {
	var errs []error
	for _, b := range list {
		res, err := verifier.Verify(b, policy)
		if err == nil && (res.Statement == nil || res.Statement.PredicateType != CosignSignPredicateType) {
			pt := "none"
			if res.Statement != nil {
				pt = res.Statement.PredicateType
			}
			err = fmt.Errorf("verified bundle is an attestation (%s), not a signature (%s)", pt, CosignSignPredicateType)
		}
		if err == nil {
			return res, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("sigstore bundle: %w", errors.Join(errs...))
}
