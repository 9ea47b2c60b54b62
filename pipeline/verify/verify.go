package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature/payload"
	"golang.org/x/sync/errgroup"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

// Verdict is the outcome for one image.
type Verdict string

const (
	// Verified: a signature matched the policy and signs this image's digest.
	Verified Verdict = "verified"
	// Failed: signatures exist but none is valid for the policy (wrong key, wrong
	// identity or issuer, tampered payload, a claim for another digest, ...).
	Failed Verdict = "failed"
	// Missing: the image has no signature and its policy does not allow that.
	Missing Verdict = "missing"
	// UnsignedAllowed: no signature, and the policy explicitly allows it.
	UnsignedAllowed Verdict = "unsigned-allowed"
	// Skipped: no policy covers the image (e.g. registry.k8s.io images); the reason says so.
	Skipped Verdict = "skipped"
	// Errored: the check could not be made (registry unreachable, image not found,
	// trust root unavailable). Fails closed, but is not a signature verdict.
	Errored Verdict = "error"
	// Planned: --dry-run; the image would be checked under Policy.
	Planned Verdict = "planned"
)

// OK reports whether the verdict lets the image through.
func (v Verdict) OK() bool {
	switch v {
	case Verified, UnsignedAllowed, Skipped, Planned:
		return true
	}
	return false
}

// Signature formats, as the format column names them.
const (
	// FormatSigTag is the legacy cosign storage: an OCI manifest tagged
	// sha256-<hex>.sig in the image's repository (simple-signing payload).
	FormatSigTag = "sig-tag"
	// FormatBundle is a sigstore bundle (v0.3, DSSE in-toto statement) attached to the
	// image as an OCI referrer, read through the referrers API or its sha256-<hex> tag
	// fallback: `cosign sign --new-bundle-format`, image-factory's GSA signing.
	FormatBundle = "bundle-referrer"
)

// CosignSignPredicateType is the in-toto predicate type of a signature (not another kind
// of attestation) in the bundle format.
const CosignSignPredicateType = "https://sigstore.dev/cosign/sign/v1"

// errNoTrust marks a keyless attempt that could not load the trust root; the bundle
// path needs the same root, so it is not tried.
var errNoTrust = errors.New("sigstore trust root unavailable")

// ErrVerification is wrapped (with fail.ErrPolicy) by Report.Err when an image failed
// verification or lacks a required signature.
var ErrVerification = errors.New("signature verification failed")

// ErrUnverifiable is wrapped by Report.Err when some image could not be checked at all.
var ErrUnverifiable = errors.New("signature verification could not be completed")

// ErrClaimMismatch means a signature is cryptographically valid but signs another digest.
var ErrClaimMismatch = errors.New("signed payload names another digest")

// Result is one row of `imgpipe verify`. Its JSON form is part of the CLI contract.
type Result struct {
	// Image is the reference as the lock names it.
	Image string `json:"image"`
	// Source is where the image and its signatures were read, when a mirror rewrote it.
	Source string `json:"source,omitempty"`
	// Digest is the digest checked: the lock's, or the tag's current one when unpinned.
	Digest string `json:"digest,omitempty"`
	// Pinned is false when the lock had no digest and the tag was resolved at the registry.
	Pinned bool   `json:"pinned"`
	Role   string `json:"role"`
	Policy string `json:"policy,omitempty"`
	// Signer is the identity ("subject (issuer)") or key ("key NAME (sha256:FP)") that
	// verified the image; for a failure, what the policy expected.
	Signer  string  `json:"signer,omitempty"`
	Format  string  `json:"format,omitempty"`
	Verdict Verdict `json:"verdict"`
	Reason  string  `json:"reason,omitempty"`
}

// Summary counts results per verdict.
type Summary struct {
	Total           int `json:"total"`
	Verified        int `json:"verified"`
	Failed          int `json:"failed"`
	Missing         int `json:"missing"`
	UnsignedAllowed int `json:"unsigned_allowed"`
	Skipped         int `json:"skipped"`
	Errors          int `json:"errors"`
	Planned         int `json:"planned"`
}

// Report is the outcome of Verify or Plan; the JSON shape of `imgpipe verify -o json`.
type Report struct {
	DryRun  bool     `json:"dry_run"`
	Results []Result `json:"results"`
	Summary Summary  `json:"summary"`
}

func newReport(results []Result, dryRun bool) *Report {
	r := &Report{DryRun: dryRun, Results: results}
	for _, res := range results {
		r.Summary.Total++
		switch res.Verdict {
		case Verified:
			r.Summary.Verified++
		case Failed:
			r.Summary.Failed++
		case Missing:
			r.Summary.Missing++
		case UnsignedAllowed:
			r.Summary.UnsignedAllowed++
		case Skipped:
			r.Summary.Skipped++
		case Errored:
			r.Summary.Errors++
		case Planned:
			r.Summary.Planned++
		}
	}
	return r
}

// Err is nil when every image passed. Failed or missing signatures give an error that
// wraps ErrVerification and fail.ErrPolicy (exit 3); images that could not be checked
// at all give ErrUnverifiable (exit 1, since retrying may help). Policy wins over both.
func (r *Report) Err() error {
	var bad, broken []string
	for _, res := range r.Results {
		switch res.Verdict {
		case Failed, Missing:
			bad = append(bad, res.Image)
		case Errored:
			broken = append(broken, res.Image)
		}
	}
	switch {
	case len(bad) > 0:
		return fail.Policy(fmt.Errorf("%w: %d of %d images: %s", ErrVerification, len(bad), len(r.Results), strings.Join(bad, ", ")))
	case len(broken) > 0:
		return fmt.Errorf("%w: %d of %d images: %s", ErrUnverifiable, len(broken), len(r.Results), strings.Join(broken, ", "))
	}
	return nil
}

// MirrorFunc rewrites an upstream reference to the reference it is read from (a local
// mirror). The image's digest and its signature tag are then read from the mirror.
type MirrorFunc func(name.Reference) (name.Reference, error)

// TrustFunc supplies the sigstore trusted material (Fulcio CAs, Rekor and CT log keys)
// for keyless checks. It is called at most once, and only if a keyless check runs.
type TrustFunc func(ctx context.Context) (root.TrustedMaterial, error)

// Option configures a Verifier.
type Option func(*Verifier)

// WithTrust sets where keyless trust comes from; without it keyless checks fail with Errored.
func WithTrust(f TrustFunc) Option { return func(v *Verifier) { v.trust = f } }

// WithMirror reads images and signatures through a mirror.
func WithMirror(f MirrorFunc) Option { return func(v *Verifier) { v.mirror = f } }

// WithKeychain sets registry credentials (default: anonymous).
func WithKeychain(k authn.Keychain) Option { return func(v *Verifier) { v.keychain = k } }

// WithRemoteOptions adds go-containerregistry options (transport, retries, ...).
func WithRemoteOptions(opts ...remote.Option) Option {
	return func(v *Verifier) { v.remoteOpts = append(v.remoteOpts, opts...) }
}

// WithJobs sets how many images are checked at once (default 4).
func WithJobs(n int) Option {
	return func(v *Verifier) {
		if n > 0 {
			v.jobs = n
		}
	}
}

// WithLogger sets the logger for debug output (default: discard).
func WithLogger(l *slog.Logger) Option { return func(v *Verifier) { v.log = l } }

// WithProgress is called once per finished image (from several goroutines, serialized).
func WithProgress(f func(done, total int, r Result)) Option {
	return func(v *Verifier) { v.progress = f }
}

// Verifier checks images against policies. Build it with New; it is safe for concurrent use.
type Verifier struct {
	policies   []Policy
	trust      TrustFunc
	mirror     MirrorFunc
	keychain   authn.Keychain
	remoteOpts []remote.Option
	puller     *remote.Puller
	jobs       int
	log        *slog.Logger
	progress   func(done, total int, r Result)

	trustMu  sync.Mutex
	trustSet bool
	material root.TrustedMaterial
	trustErr error
}

// New returns a Verifier applying policies in order: the first policy whose pattern
// matches an image decides for it. Put site policies before the built-in ones.
func New(policies []Policy, opts ...Option) (*Verifier, error) {
	var errs []error
	for i := range policies {
		if err := policies[i].Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fail.Usage(err)
	}
	v := &Verifier{
		policies: policies,
		keychain: authn.NewMultiKeychain(), // anonymous
		jobs:     4,
		log:      slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(v)
	}
	// One puller for every request: it keeps each repository's ping and token, so an
	// image costs its manifest and signature reads, not a fresh handshake per call.
	p, err := remote.NewPuller(append([]remote.Option{remote.WithAuthFromKeychain(v.keychain)}, v.remoteOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("setting up registry access: %w", err)
	}
	v.puller = p
	return v, nil
}

// Policy returns the policy that covers ref, if any.
func (v *Verifier) Policy(ref name.Reference) (*Policy, bool) {
	for i := range v.policies {
		if v.policies[i].Matches(ref) {
			return &v.policies[i], true
		}
	}
	return nil, false
}

// Plan lists what Verify would check, without any network access.
func (v *Verifier) Plan(images []Image) *Report {
	results := make([]Result, len(images))
	for i, img := range images {
		res, ref, pol := v.prepare(img)
		if res.Verdict == "" {
			res.Verdict = Planned
			res.Signer = pol.expected()
			res.Reason = pol.Note
			if v.mirror != nil {
				if src, err := v.mirror(ref); err == nil && src.String() != ref.String() {
					res.Source = src.String()
				}
			}
		}
		results[i] = res
	}
	return newReport(results, true)
}

// Verify checks every image and returns one result per image, in input order. It
// returns an error only when ctx ends; per-image problems are verdicts (see Report.Err).
func (v *Verifier) Verify(ctx context.Context, images []Image) (*Report, error) {
	results := make([]Result, len(images))
	var mu sync.Mutex
	done := 0
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(v.jobs)
	for i, img := range images {
		g.Go(func() error {
			results[i] = v.VerifyImage(gctx, img)
			if v.progress != nil {
				mu.Lock()
				done++
				v.progress(done, len(images), results[i])
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait() // workers never fail; ctx is checked below
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("verifying signatures: %w", err)
	}
	return newReport(results, false), nil
}

// prepare parses the reference and picks the policy. A non-empty Verdict in the result
// means the image is decided without looking at the registry.
func (v *Verifier) prepare(img Image) (Result, name.Reference, *Policy) {
	res := Result{Image: img.Ref, Digest: img.Digest, Pinned: img.Digest != "", Role: img.Role}
	// The canonical form is what policies match and registries are asked for, so no
	// spelling of a host (GHCR.IO, ghcr.io:443, index.docker.io) escapes a policy.
	ref, err := canonicalReference(img.Ref)
	if err != nil {
		res.Verdict, res.Reason = Errored, fmt.Sprintf("parsing reference: %v", err)
		return res, nil, nil
	}
	if img.Digest != "" {
		if _, err := v1.NewHash(img.Digest); err != nil {
			res.Verdict, res.Reason = Errored, fmt.Sprintf("pinned digest %q: %v", img.Digest, err)
			return res, nil, nil
		}
	}
	if d, ok := ref.(name.Digest); ok && img.Digest == "" {
		res.Digest, res.Pinned = d.DigestStr(), true
	}
	pol, ok := v.Policy(ref)
	if !ok && RequiresSignature(img.Role) {
		res.Verdict = Failed
		res.Reason = fmt.Sprintf("no signature policy covers %s, and %s images must be verified; add a verify.policies entry to imgpipe.yaml", ref.Context().Name(), img.Role)
		return res, ref, nil
	}
	if !ok {
		res.Verdict = Skipped
		res.Reason = fmt.Sprintf("no signature policy covers %s; add a verify.policies entry to imgpipe.yaml to check it", ref.Context().Name())
		return res, ref, nil
	}
	res.Policy = pol.Name
	if len(pol.Keys) == 0 && len(pol.Identities) == 0 {
		// Validate guarantees AllowUnsigned here.
		res.Verdict, res.Reason = UnsignedAllowed, "policy allows unsigned images and names no signer"
	}
	return res, ref, pol
}

// canonicalReference parses a reference into its canonical form (site.ParseImageRef).
func canonicalReference(s string) (name.Reference, error) {
	r, err := site.ParseImageRef(s)
	if err != nil {
		return nil, err
	}
	return r.Reference()
}

// expected describes the signers a policy accepts, for the signer column of rows that
// did not verify.
func (p *Policy) expected() string {
	var parts []string
	for _, k := range p.Keys {
		parts = append(parts, k.String())
	}
	for _, id := range p.Identities {
		parts = append(parts, id.String())
	}
	return "want " + strings.Join(parts, " or ")
}

// RequiresSignature reports whether images of a role must be covered by a policy:
// extensions, the extensions catalog and factory installers end up on nodes, so an
// uncovered one fails rather than being skipped. Core images (kubelet, etcd, ...) that
// no policy covers are skipped: registry.k8s.io and gcr.io images are not Sidero-signed.
func RequiresSignature(role string) bool {
	switch role {
	case RoleExtension, RoleCatalog, RoleFactoryInstaller:
		return true
	}
	return false
}

// VerifyImage checks one image.
func (v *Verifier) VerifyImage(ctx context.Context, img Image) Result {
	res, ref, pol := v.prepare(img)
	if res.Verdict != "" {
		return res
	}
	src := ref
	if v.mirror != nil {
		m, err := v.mirror(ref)
		if err != nil {
			res.Verdict, res.Reason = Errored, fmt.Sprintf("mapping %s to its mirror: %v", ref, err)
			return res
		}
		src = m
		if src.String() != ref.String() {
			res.Source = src.String()
		}
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.Reuse(v.puller)}

	// Resolve (unpinned) or confirm (pinned) the digest where the image is read, so an
	// unreachable registry or an absent image is an error, not a missing signature.
	target := src
	if res.Digest != "" {
		target = src.Context().Digest(res.Digest)
	}
	desc, err := remote.Head(target, ropts...)
	if err != nil {
		res.Verdict, res.Reason = Errored, describeRegistryError("reading "+target.String(), err)
		return res
	}
	if res.Digest == "" {
		res.Digest = desc.Digest.String()
	} else if desc.Digest.String() != res.Digest {
		res.Verdict, res.Reason = Failed, fmt.Sprintf("registry serves %s for %s", desc.Digest, target)
		return res
	}
	digestRef := src.Context().Digest(res.Digest)

	var outcomes []attempt
	for _, k := range pol.Keys {
		co := newCheckOpts(ropts)
		co.SigVerifier = k.verifier
		// Key-signed images (Image Factory) carry no tlog entry or certificate.
		co.IgnoreTlog, co.IgnoreSCT, co.Offline = true, true, true
		a := v.try(ctx, digestRef, co, k.String())
		if a.verdict == Verified {
			return decide(res, pol, []attempt{a})
		}
		outcomes = append(outcomes, a)
	}
	keylessUsable := false
	if len(pol.Identities) > 0 {
		a := v.tryKeyless(ctx, digestRef, pol.Identities, ropts)
		if a.verdict == Verified {
			return decide(res, pol, []attempt{a})
		}
		outcomes = append(outcomes, a)
		keylessUsable = !errors.Is(a.err, ErrNoIdentity) && !errors.Is(a.err, errNoTrust)
	}
	// No valid .sig: look for the new format, sigstore bundles attached as referrers.
	bundles := &referrerBundles{ref: digestRef, ropts: ropts}
	if len(pol.Keys) > 0 {
		a := v.tryKeyBundles(ctx, bundles, pol.Keys)
		if a.verdict == Verified {
			return decide(res, pol, []attempt{a})
		}
		outcomes = append(outcomes, a)
	}
	if keylessUsable {
		outcomes = append(outcomes, v.tryBundles(ctx, bundles, pol.Identities))
	}
	return decide(res, pol, outcomes)
}

type attempt struct {
	signer  string // who verified, or who was expected
	format  string
	verdict Verdict
	err     error
}

func newCheckOpts(ropts []remote.Option) *cosign.CheckOpts {
	return &cosign.CheckOpts{
		RegistryClientOpts: []ociremote.Option{ociremote.WithRemoteOptions(ropts...)},
		ClaimVerifier:      claimVerifier,
		MaxWorkers:         4,
	}
}

func (v *Verifier) tryKeyless(ctx context.Context, ref name.Digest, ids []Identity, ropts []remote.Option) attempt {
	want := make([]string, len(ids))
	for i, id := range ids {
		want[i] = id.String()
	}
	expected := strings.Join(want, " or ")
	// cosign accepts any certificate chaining to the roots when Identities is empty;
	// refuse that here rather than rely on every caller's policy validation.
	if len(ids) == 0 {
		return attempt{signer: expected, format: FormatSigTag, verdict: Errored, err: ErrNoIdentity}
	}
	for _, id := range ids {
		if err := id.Validate(); err != nil {
			return attempt{signer: expected, format: FormatSigTag, verdict: Errored, err: err}
		}
	}
	tm, err := v.trustedMaterial(ctx)
	if err != nil {
		return attempt{signer: expected, format: FormatSigTag, verdict: Errored, err: fmt.Errorf("%w: %w", errNoTrust, err)}
	}
	co := newCheckOpts(ropts)
	co.TrustedMaterial = tm
	for _, id := range ids {
		co.Identities = append(co.Identities, cosign.Identity{
			Issuer: id.Issuer, IssuerRegExp: id.IssuerRegExp, Subject: id.Subject, SubjectRegExp: id.SubjectRegExp,
		})
	}
	// Keyless signatures must carry a Rekor SET, checked offline against the trusted
	// root; there is no online Rekor lookup. Certificates must carry an SCT whenever the
	// trust root has CT logs (the public-good one does; a private Fulcio may not).
	co.Offline = true
	co.IgnoreSCT = len(tm.CTLogs()) == 0
	return v.try(ctx, ref, co, expected)
}

func (v *Verifier) try(ctx context.Context, ref name.Digest, co *cosign.CheckOpts, expected string) attempt {
	sigs, _, err := cosign.VerifyImageSignatures(ctx, ref, co)
	if err == nil {
		signer := signerOf(sigs)
		if signer == "" {
			signer = expected
		}
		return attempt{signer: signer, format: FormatSigTag, verdict: Verified}
	}
	v.log.Debug("signature check", "image", ref.String(), "signer", expected, "err", err)
	var noSigs *cosign.ErrNoSignaturesFound
	var noMatch *cosign.ErrNoMatchingSignatures
	switch {
	case errors.As(err, &noSigs):
		return attempt{signer: expected, format: FormatSigTag, verdict: Missing, err: err}
	case errors.As(err, &noMatch):
		return attempt{signer: expected, format: FormatSigTag, verdict: Failed, err: err}
	default:
		return attempt{signer: expected, format: FormatSigTag, verdict: Errored, err: errors.New(describeRegistryError("reading signatures", err))}
	}
}

// decide merges the attempts of all signers of a policy: any verified wins; otherwise
// an error (we could not look everywhere) beats a failure, which beats a missing signature.
func decide(res Result, pol *Policy, outcomes []attempt) Result {
	for _, o := range outcomes {
		if o.verdict == Verified {
			res.Verdict, res.Signer, res.Format = Verified, o.signer, o.format
			return res
		}
	}
	res.Signer = pol.expected()
	var reasons []string
	worst := Missing
	for _, o := range outcomes {
		switch o.verdict {
		case Errored:
			worst = Errored
		case Failed:
			if worst != Errored {
				worst = Failed
			}
		}
		switch {
		case o.err == nil:
		case len(outcomes) == 1: // the signer column already says what was expected
			reasons = append(reasons, oneLine(o.err.Error()))
		default:
			reasons = append(reasons, o.format+" "+o.signer+": "+oneLine(o.err.Error()))
		}
	}
	res.Verdict = worst
	if worst == Missing {
		if pol.AllowUnsigned {
			res.Verdict, res.Reason = UnsignedAllowed, "no signature; policy allows unsigned images"
			return res
		}
		res.Reason = "no signature (no " + sigTagHint(res.Digest) + " tag"
		res.Reason += ", no sigstore bundle referrer); policy requires one"
		return res
	}
	res.Reason = strings.Join(reasons, "; ")
	return res
}

func sigTagHint(digest string) string {
	return strings.Replace(digest, ":", "-", 1) + ".sig"
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// claimVerifier binds a signature to the image: the simple-signing payload must name
// exactly the digest being verified. cosign leaves CheckOpts.ClaimVerifier nil by default,
// which accepts a valid signature of any image placed under this image's .sig tag.
func claimVerifier(sig oci.Signature, imageDigest v1.Hash, _ map[string]any) error {
	p, err := sig.Payload()
	if err != nil {
		return fmt.Errorf("reading signed payload: %w", err)
	}
	var ss payload.SimpleContainerImage
	if err := json.Unmarshal(p, &ss); err != nil {
		return fmt.Errorf("decoding signed payload: %w", err)
	}
	if got := ss.Critical.Image.DockerManifestDigest; got != imageDigest.String() {
		return fmt.Errorf("%w: payload signs %q, image is %s", ErrClaimMismatch, got, imageDigest)
	}
	if ss.Critical.Type != payload.CosignSignatureType {
		return fmt.Errorf("signed payload type %q is not %q", ss.Critical.Type, payload.CosignSignatureType)
	}
	return nil
}

// signerOf names who signed: the certificate's subject and issuer for keyless, else the key.
func signerOf(sigs []oci.Signature) string {
	for _, s := range sigs {
		cert, err := s.Cert()
		if err != nil || cert == nil {
			continue
		}
		ce := cosign.CertExtensions{Cert: cert}
		return strings.Join(cryptoutils.GetSubjectAlternateNames(cert), ",") + " (" + ce.GetIssuer() + ")"
	}
	return ""
}

func (v *Verifier) trustedMaterial(ctx context.Context) (root.TrustedMaterial, error) {
	v.trustMu.Lock()
	defer v.trustMu.Unlock()
	if !v.trustSet {
		if v.trust == nil {
			v.trustErr = errors.New("no sigstore trusted root configured for keyless verification")
		} else {
			v.material, v.trustErr = v.trust(ctx)
		}
		// A cancelled context is not a property of the trust root; try again next time.
		v.trustSet = ctx.Err() == nil
	}
	return v.material, v.trustErr
}

func describeRegistryError(doing string, err error) string {
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return doing + ": not found"
	}
	return doing + ": " + oneLine(err.Error())
}
