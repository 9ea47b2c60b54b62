package verify

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

// SiteOptions say where SitePolicies reads files and the factory key from.
type SiteOptions struct {
	// FactoryKeyFile pins the factory's public key (--factory-key); empty falls back to
	// the config's verify.factoryKey, then to fetching <factory>/oci/cosign/signing-key.pub.
	FactoryKeyFile string
	// DryRun never fetches the factory key; the factory policy's Note says where it would.
	DryRun bool
	// HTTPClient fetches the factory key (default: a client with a 30 s timeout).
	HTTPClient *http.Client
	// ReadFile reads key files (default os.ReadFile).
	ReadFile func(string) ([]byte, error)
	Log      *slog.Logger
}

// SitePolicies builds the policy list for a lock, in match order: the site's
// verify.policies, the built-in Sidero policy, then the factory policy for the lock's
// factory (and the config's factory registry host). The factory key is fetched only
// when the lock names an image under the factory and no key file is pinned; a factory
// serving no key leaves the keyless GSA identity as the only accepted signer.
func SitePolicies(ctx context.Context, lock *site.Lock, cfg *site.Config, o SiteOptions) ([]Policy, error) {
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	images, err := ImagesFromLock(lock)
	if err != nil {
		return nil, err
	}
	policies, err := PoliciesFromConfig(cfg.Verify, o.ReadFile)
	if err != nil {
		return nil, err
	}
	policies = append(policies, SideroPolicy())

	factoryURL := lock.Factory
	if factoryURL == "" {
		factoryURL = cfg.Factory.URL
	}
	hosts, err := FactoryHosts(factoryURL, cfg.Factory.Registry)
	if err != nil || len(hosts) == 0 {
		return policies, err
	}
	keyFile := o.FactoryKeyFile
	if keyFile == "" {
		keyFile = cfg.Verify.FactoryKey
	}
	p := FactoryPolicy(hosts, nil)
	switch {
	case keyFile != "":
		data, err := o.ReadFile(keyFile)
		if err != nil {
			return nil, fail.Usage(fmt.Errorf("reading factory key: %w", err))
		}
		k, err := ParsePublicKey(keyFile, data)
		if err != nil {
			return nil, fail.Usage(err)
		}
		p.Keys = []Key{k}
	case !lockUses(images, &p):
		// Nothing to check under the factory: don't contact it.
	case o.DryRun:
		p.Note = "factory key would be fetched from " + strings.TrimSuffix(factoryURL, "/") + "/oci/cosign/signing-key.pub"
	default:
		k, err := FetchFactoryKey(ctx, o.HTTPClient, factoryURL)
		if err != nil {
			return nil, err
		}
		if k == nil {
			o.Log.Info("factory serves no signing key; its installers must be signed keyless", "factory", factoryURL)
		} else {
			p.Keys = []Key{*k}
		}
	}
	return append(policies, p), nil
}

// lockUses reports whether any image of the lock falls under the policy.
func lockUses(images []Image, p *Policy) bool {
	for _, img := range images {
		if ref, err := canonicalReference(img.Ref); err == nil && p.Matches(ref) {
			return true
		}
	}
	return false
}

// CheckLock is the verify stage in one call, for `imgpipe verify` and for the build
// pipeline before it mirrors images or writes an upgrade plan: it builds the site's
// policies, checks every image of the lock (or plans the checks when so.DryRun), and
// returns the report together with Report.Err (fail.ErrPolicy for a failed or missing
// signature, ErrUnverifiable when an image could not be checked).
func CheckLock(ctx context.Context, lock *site.Lock, cfg *site.Config, so SiteOptions, opts ...Option) (*Report, error) {
	policies, err := SitePolicies(ctx, lock, cfg, so)
	if err != nil {
		return nil, err
	}
	v, err := New(policies, opts...)
	if err != nil {
		return nil, err
	}
	images, err := ImagesFromLock(lock)
	if err != nil {
		return nil, err
	}
	if so.DryRun {
		rep := v.Plan(images)
		return rep, rep.Err()
	}
	rep, err := v.Verify(ctx, images)
	if err != nil {
		return nil, err
	}
	return rep, rep.Err()
}

// VerifiedDigests maps each image a report verified (verified or unsigned-allowed, with
// the digest checked) to that digest, keyed by site.ImageRef.Key. It is the verify →
// mirror hand-off: later stages act on these digests, never on a tag resolved again.
func VerifiedDigests(rep *Report) map[string]string {
	out := map[string]string{}
	for _, r := range rep.Results {
		if r.Digest == "" || (r.Verdict != Verified && r.Verdict != UnsignedAllowed) {
			continue
		}
		if ref, err := site.ParseImageRef(r.Image); err == nil {
			out[ref.Key()] = r.Digest
		}
	}
	return out
}

// Moved lists the images of an earlier report whose digest was resolved from a tag
// (not pinned by the lock) and whose tag now names another digest where the image is
// read (the mirror, with WithMirror). A resumed build re-verifies when the list is not
// empty, so a tag moved from a verified A to an unverified B is never taken as done.
// An image that cannot be checked counts as moved: the answer must be positive.
func (v *Verifier) Moved(ctx context.Context, prev *Report) []string {
	var moved []string
	for _, r := range prev.Results {
		if r.Pinned || r.Digest == "" {
			continue
		}
		ref, err := canonicalReference(r.Image)
		if err == nil && v.mirror != nil {
			ref, err = v.mirror(ref)
		}
		if err != nil {
			moved = append(moved, r.Image)
			continue
		}
		desc, err := remote.Head(ref, remote.WithContext(ctx), remote.Reuse(v.puller))
		if err != nil || desc.Digest.String() != r.Digest {
			moved = append(moved, r.Image)
		}
	}
	return moved
}
