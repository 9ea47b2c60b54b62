package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// pushImage copies one image by digest from its upstream into a plain registry: the whole
// tree (index, every child manifest, every blob) by digest, the tag last, then its
// signature tags. A mirror whose tag already names the digest is complete, because a tag
// is only ever written after everything under it.
func (r *run) pushImage(ctx context.Context, p Placement, ep Endpoint, ir *ImageReport) error {
	ref, err := ParseRef(p.Ref)
	if err != nil {
		return err
	}
	src, err := r.upstreamClient(ref.Upstream)
	if err != nil {
		return err
	}
	dst, err := r.endpointClient(ep)
	if err != nil {
		return err
	}
	dstRepo := ref.at(ep).Repository
	digest := p.Digest
	if digest == "" {
		d, found, err := src.headManifest(ctx, ref.Repository, ref.Tag)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%s not found upstream", p.Ref)
		}
		digest, ir.Digest, ir.DigestSource = d, d, "upstream"
		ir.note("digest not in the lock; resolved upstream")
	}
	// The signature lookups upstream overlap the image's own copy.
	var sigs []sigRef
	var sigErr error
	looked := make(chan struct{})
	go func() {
		defer close(looked)
		sigs, sigErr = r.signatureTags(ctx, src, ref.Repository, digest)
	}()
	wrote, confirmed, err := r.pushTagged(ctx, src, dst, ref.Repository, dstRepo, digest, ref.Tag, ir)
	<-looked
	if err != nil {
		return err
	}
	if sigErr != nil {
		return sigErr
	}
	w, c, err := r.pushSignatures(ctx, src, dst, ref.Repository, dstRepo, digest, sigs, ir)
	if err != nil {
		return err
	}
	wrote, confirmed = wrote || w, confirmed && c
	switch {
	case r.m.dryRun && wrote:
		ir.Status = StatusPlanned
	case wrote:
		ir.Status = StatusCopied
	default:
		ir.Status = StatusPresent
	}
	// Every tag was seen at, or written with, the expected digest by the mirror itself:
	// verification has nothing left to ask.
	ir.current = confirmed && !r.m.dryRun
	return nil
}

// pushSignatures copies the signature tags found upstream and, unless the referrers
// fallback tag was among them, the referrers the upstream lists through its API.
func (r *run) pushSignatures(ctx context.Context, src, dst *regClient, srcRepo, dstRepo, digest string, sigs []sigRef, ir *ImageReport) (wrote, confirmed bool, err error) {
	confirmed = true
	for _, s := range sigs {
		w, c, err := r.pushTagged(ctx, src, dst, srcRepo, dstRepo, s.digest, s.tag, ir)
		if err != nil {
			return false, false, fmt.Errorf("copying %s: %w", s.tag, err)
		}
		wrote, confirmed = wrote || w, confirmed && c
		ir.Signatures = append(ir.Signatures, s.tag)
	}
	if !r.carriesReferrers() || slices.ContainsFunc(sigs, func(s sigRef) bool { return s.tag == sigTag(digest, "") }) {
		return wrote, confirmed, nil
	}
	tag, w, err := r.pushReferrers(ctx, src, dst, srcRepo, dstRepo, digest, ir)
	if err != nil {
		return false, false, err
	}
	if tag != "" {
		ir.Signatures = append(ir.Signatures, tag)
		confirmed = confirmed && !w // the merged tag was written: verification looks
	}
	return wrote || w, confirmed, nil
}

// sigRef is a signature tag found upstream and its digest.
type sigRef struct{ tag, digest string }

// signatureTags looks up every signature suffix upstream at once; most images lack
// most of them, and one round trip each in a row is the latency of a whole image.
func (r *run) signatureTags(ctx context.Context, src *regClient, repo, digest string) ([]sigRef, error) {
	found := make([]sigRef, len(r.m.sigSuffix))
	g, gctx := errgroup.WithContext(ctx)
	for i, suffix := range r.m.sigSuffix {
		g.Go(func() error {
			tag := sigTag(digest, suffix)
			d, ok, err := src.headManifest(gctx, repo, tag)
			if err != nil {
				return fmt.Errorf("looking for %s: %w", tag, err)
			}
			if ok {
				found[i] = sigRef{tag: tag, digest: d}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []sigRef
	for _, s := range found {
		if s.tag != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// pushTagged makes tag (or, without a tag, the digest) resolve to digest at the mirror.
// wrote is false when the mirror already had it; confirmed is true when the mirror
// itself answered with digest for the tag (its HEAD, or the Docker-Content-Digest of
// the PUT), so nothing needs to look again.
func (r *run) pushTagged(ctx context.Context, src, dst *regClient, srcRepo, dstRepo, digest, tag string, ir *ImageReport) (wrote, confirmed bool, err error) {
	at := tag
	if at == "" {
		at = digest
	}
	have, found, err := dst.headManifest(ctx, dstRepo, at)
	if err != nil {
		return false, false, err
	}
	if found && have == digest {
		return false, true, nil
	}
	if found && tag != "" {
		ir.note("mirror tag %s pointed at %s; moving it to %s", tag, have, digest)
	}
	_, stored, err := r.pushManifest(ctx, src, dst, srcRepo, dstRepo, digest, tag, ir)
	if err != nil {
		return false, false, err
	}
	return true, stored == digest, nil
}

// pushManifest copies the manifest digest and everything it references, children first,
// so the registry never holds a manifest whose content is missing. It is written under
// tag when one is given (a PUT by tag stores it by digest too: one request, not two),
// else by digest. The mirror is not asked first whether it has the manifest: on a fresh
// mirror the answer is always no, and where it is yes (a resumed run), every blob under
// it answers its mount request with "present" and moves nothing.
// stored is the digest the mirror confirmed for it ("" in a dry run).
func (r *run) pushManifest(ctx context.Context, src, dst *regClient, srcRepo, dstRepo, digest, tag string, ir *ImageReport) (m *manifest, stored string, err error) {
	m, found, err := src.getManifest(ctx, srcRepo, digest)
	if err != nil {
		return nil, "", err
	}
	if !found {
		return nil, "", fmt.Errorf("manifest %s not found in %s/%s", digest, src.reg.RegistryStr(), srcRepo)
	}
	ir.tally.manifests.Add(1)
	g, gctx := errgroup.WithContext(ctx)
	children, blobs, err := references(m)
	if err != nil {
		return nil, "", err
	}
	for _, c := range children {
		g.Go(func() error {
			_, _, err := r.pushManifest(gctx, src, dst, srcRepo, dstRepo, c.Digest.String(), "", ir)
			return err
		})
	}
	for _, b := range blobs {
		g.Go(func() error { return r.pushBlob(gctx, src, dst, srcRepo, dstRepo, b, ir) })
	}
	if err := g.Wait(); err != nil {
		return nil, "", err
	}
	if r.m.dryRun {
		return m, "", nil
	}
	at := tag
	if at == "" {
		at = digest
	}
	if stored, err = dst.putManifest(ctx, dstRepo, at, m); err != nil {
		return nil, "", err
	}
	return m, stored, nil
}

// references splits what a manifest points at into child manifests and blobs.
// Non-distributable (foreign) layers are left out: registries do not hold them.
func references(m *manifest) (children, blobs []v1.Descriptor, err error) {
	switch {
	case m.MediaType.IsIndex() || isIndexBody(m):
		idx, err := v1.ParseIndexManifest(bytes.NewReader(m.Body))
		if err != nil {
			return nil, nil, fmt.Errorf("parsing index %s: %w", m.Digest, err)
		}
		for _, d := range idx.Manifests {
			if d.MediaType.IsIndex() || d.MediaType.IsImage() || d.MediaType == "" {
				children = append(children, d)
			}
		}
		return children, nil, nil
	case m.MediaType.IsSchema1():
		return nil, nil, fmt.Errorf("manifest %s is Docker schema 1, which imgpipe does not mirror", m.Digest)
	default:
		im, err := v1.ParseManifest(bytes.NewReader(m.Body))
		if err != nil {
			return nil, nil, fmt.Errorf("parsing manifest %s: %w", m.Digest, err)
		}
		blobs = append(blobs, im.Config)
		for _, l := range im.Layers {
			if l.MediaType.IsDistributable() && len(l.URLs) == 0 {
				blobs = append(blobs, l)
			}
		}
		return nil, blobs, nil
	}
}

// isIndexBody catches an index served without its media type.
func isIndexBody(m *manifest) bool {
	return m.MediaType == "" && bytes.Contains(m.Body, []byte(`"manifests"`))
}

// pushBlob moves one blob unless the mirror has it. Per registry and digest one
// goroutine at a time decides. The upload is opened with a mount request: from another
// repository of the mirror known to hold the blob, else from the target repository
// itself, so one POST both asks whether the blob is there (201: linked, no data) and
// opens the upload that carries it (202). That is one request fewer per blob than a HEAD
// first, and the same answer: distribution links a mount only from a repository that
// holds the blob. Only a blob the mirror lacks is streamed from upstream (never staged on
// disk). A registry that ignores mount parameters answers 202 and gets the data again
// on a resumed run: a cost, not an error. A dry run writes nothing, so it asks with a HEAD.
func (r *run) pushBlob(ctx context.Context, src, dst *regClient, srcRepo, dstRepo string, b v1.Descriptor, ir *ImageReport) error {
	digest := b.Digest.String()
	ir.tally.blobs.Add(1)
	e := r.blob(dst.reg.RegistryStr() + "|" + digest)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.repos[dstRepo] {
		r.blobsSkipped.Add(1)
		return nil
	}
	from := dstRepo
	for repo := range e.repos {
		from = repo
		break
	}
	if r.m.dryRun {
		return r.planBlob(ctx, dst, dstRepo, from, b, e, ir)
	}
	sem := r.sem("blob|" + dst.reg.RegistryStr())
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-sem }()
	var got blobOutcome
	err := retry(ctx, r.m.backoff, &r.c, func() error {
		var err error
		got, err = r.uploadBlob(ctx, src, dst, srcRepo, dstRepo, &from, b)
		return err
	})
	if err != nil {
		return fmt.Errorf("copying blob %s: %w", digest, err)
	}
	e.repos[dstRepo] = true
	switch got {
	case blobPresent:
		r.blobsSkipped.Add(1)
		return nil
	case blobMounted:
		r.blobsMounted.Add(1)
		return nil
	}
	ir.tally.moved.Add(1)
	ir.tally.bytes.Add(b.Size)
	r.emit(Event{Kind: "blob", Image: ir.Ref, Digest: digest, Bytes: b.Size})
	return nil
}

// planBlob is pushBlob in a dry run: a HEAD says whether the blob would move.
func (r *run) planBlob(ctx context.Context, dst *regClient, dstRepo, from string, b v1.Descriptor, e *blobEntry, ir *ImageReport) error {
	if from == dstRepo {
		ok, err := dst.blobExists(ctx, dstRepo, b.Digest.String())
		if err != nil {
			return err
		}
		if ok {
			e.repos[dstRepo] = true
			r.blobsSkipped.Add(1)
			return nil
		}
		ir.tally.moved.Add(1)
		ir.tally.bytes.Add(b.Size)
	}
	e.repos[dstRepo] = true
	return nil
}

// blobOutcome is how a blob got into a repository.
type blobOutcome int

const (
	blobUploaded blobOutcome = iota // its data was streamed from upstream
	blobPresent                     // the repository had it already
	blobMounted                     // linked from another repository, no data
)

// uploadBlob is one attempt at getting a blob into dstRepo: a mount from *from (which
// is cleared when the registry refuses mounts from there), else the data streamed from
// upstream in one PUT.
func (r *run) uploadBlob(ctx context.Context, src, dst *regClient, srcRepo, dstRepo string, from *string, b v1.Descriptor) (blobOutcome, error) {
	digest := b.Digest.String()
	linked := blobMounted
	if *from == dstRepo {
		linked = blobPresent
	}
	loc, ok, err := dst.startUpload(ctx, dstRepo, digest, *from)
	if err != nil && *from != "" && mountRefused(err) {
		// A token scoped to this repository may not cover reading the other one, and a
		// registry may refuse mounts outright: ask plainly whether the blob is here,
		// then upload without mounting.
		*from, linked = "", blobPresent
		if ok, err = dst.blobExists(ctx, dstRepo, digest); err == nil && !ok {
			loc, ok, err = dst.startUpload(ctx, dstRepo, digest, "")
		}
	}
	if err != nil {
		return blobUploaded, err
	}
	if ok {
		return linked, nil
	}
	rc, _, err := src.openBlob(ctx, srcRepo, digest)
	if err != nil {
		dst.cancelUpload(context.WithoutCancel(ctx), dstRepo, loc)
		return blobUploaded, err
	}
	defer rc.Close()
	body := io.Reader(newVerifyingReader(rc, digest, b.Size, false))
	if err := dst.finishUpload(ctx, dstRepo, loc, digest, body, b.Size); err != nil {
		dst.cancelUpload(context.WithoutCancel(ctx), dstRepo, loc)
		return blobUploaded, err
	}
	return blobUploaded, nil
}

// mountRefused says a cross-repository mount was refused for good (401, 403, 404, 400...),
// so an upload is the way on. Throttling (429) and timeouts (408) are not refusals: they
// are retried as a mount, after the wait the registry asked for.
func mountRefused(err error) bool {
	s := statusOf(err)
	return s >= 400 && s < 500 && s != http.StatusTooManyRequests && s != http.StatusRequestTimeout
}

// lacksReferrers says whether the registry answered a referrers request of this run as
// one without the API.
func (r *run) lacksReferrers(c *regClient) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.noAPI[c.reg.RegistryStr()]
}

func (r *run) noReferrers(c *regClient) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.noAPI[c.reg.RegistryStr()] = true
}

// carriesReferrers says whether the run carries OCI referrers (the "" suffix, the
// referrers fallback tag, is among the signature suffixes).
func (r *run) carriesReferrers() bool { return slices.Contains(r.m.sigSuffix, "") }

// pushReferrers carries the referrers (cosign v3 bundles, attestations) that the
// upstream lists only through the OCI referrers API, without a fallback tag: each is
// copied by digest, and a mirror without the referrers API (distribution 2.8) gets them
// under the fallback tag sha256-<hex>, merged with what that tag already lists, which
// is where cosign looks on such a registry. tag is the fallback tag when one was
// written or found current; wrote says something was (or, dry, would be) written.
func (r *run) pushReferrers(ctx context.Context, src, dst *regClient, srcRepo, dstRepo, digest string, ir *ImageReport) (tag string, wrote bool, err error) {
	if r.lacksReferrers(src) {
		return "", false, nil
	}
	idx, ok, err := src.referrers(ctx, srcRepo, digest)
	if err == nil && !ok {
		// No referrers API here (distribution 2.8 answers 404; one that has it answers
		// 200 with an empty list for a manifest without referrers): asking again for
		// every other image of this run would get the same answer.
		r.noReferrers(src)
	}
	if err != nil || !ok || len(idx.Manifests) == 0 {
		return "", false, err
	}
	for _, d := range idx.Manifests {
		if _, _, err := r.pushManifest(ctx, src, dst, srcRepo, dstRepo, d.Digest.String(), "", ir); err != nil {
			return "", false, fmt.Errorf("copying referrer %s: %w", d.Digest, err)
		}
	}
	if _, api, err := dst.referrers(ctx, dstRepo, digest); err != nil || api {
		return "", !api, err // a mirror with the API indexes the subjects itself
	}
	tag = sigTag(digest, "")
	merged := &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	cur, found, err := dst.getManifest(ctx, dstRepo, tag)
	if err != nil {
		return "", false, err
	}
	if found {
		if old, err := v1.ParseIndexManifest(bytes.NewReader(cur.Body)); err == nil {
			merged.Manifests = old.Manifests
		}
	}
	n := len(merged.Manifests)
	for _, d := range idx.Manifests {
		if !slices.ContainsFunc(merged.Manifests, func(x v1.Descriptor) bool { return x.Digest == d.Digest }) {
			merged.Manifests = append(merged.Manifests, d)
		}
	}
	if len(merged.Manifests) == n {
		return tag, false, nil
	}
	if r.m.dryRun {
		return tag, true, nil
	}
	body, err := json.Marshal(merged)
	if err != nil {
		return "", false, err
	}
	if _, err := dst.putManifest(ctx, dstRepo, tag, &manifest{MediaType: types.OCIImageIndex, Body: body}); err != nil {
		return "", false, fmt.Errorf("writing referrers tag %s: %w", tag, err)
	}
	return tag, true, nil
}
