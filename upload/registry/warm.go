package registry

import (
	"context"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
)

// warmImage pre-seeds a pull-through cache by reading through it what a node would:
// the manifest by tag (so the cache records the tag), every child manifest by digest,
// and every blob to its end (the cache stores a blob only when it was read whole).
// The image's signature tags go the same way. Nothing is pushed.
func (r *run) warmImage(ctx context.Context, p Placement, ep Endpoint, ir *ImageReport) error {
	ref, err := ParseRef(p.Ref)
	if err != nil {
		return err
	}
	mc, err := r.endpointClient(ep)
	if err != nil {
		return err
	}
	repo := ref.at(ep).Repository
	at := ref.Tag
	if at == "" {
		at = p.Digest
	}
	if r.m.dryRun {
		// A GET through a cache fills it; a HEAD does not.
		d, found, err := mc.headManifest(ctx, repo, at)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%s not found through %s", p.Ref, ep.Host)
		}
		if p.Digest == "" {
			ir.Digest, ir.DigestSource = d, "upstream"
		} else if d != p.Digest {
			ir.note("upstream tag now points at %s, not the lock's %s", d, p.Digest)
		}
		ir.Status = StatusPlanned
		return nil
	}
	m, found, err := r.getThroughCache(ctx, mc, repo, at, r.m.backoff.Steps, r.m.backoff.Initial)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%s not found through %s", p.Ref, ep.Host)
	}
	switch {
	case p.Digest == "":
		ir.Digest, ir.DigestSource = m.Digest, "upstream"
		ir.note("digest not in the lock; resolved upstream")
	case m.Digest != p.Digest:
		// The tag moved upstream. Warm the lock's digest anyway; verification reports the tag.
		ir.note("upstream tag now points at %s, not the lock's %s", m.Digest, p.Digest)
		if m, found, err = mc.getManifest(ctx, repo, p.Digest); err != nil {
			return err
		} else if !found {
			return fmt.Errorf("%s@%s not found through %s", p.Ref, p.Digest, ep.Host)
		}
	}
	ir.tally.manifests.Add(1)
	if err := r.warmTree(ctx, mc, repo, m, ir); err != nil {
		return err
	}
	for _, suffix := range r.m.sigSuffix {
		tag := sigTag(ir.Digest, suffix)
		sm, found, err := r.getThroughCache(ctx, mc, repo, tag, 2, min(r.m.backoff.Initial, 20*time.Millisecond))
		if err != nil {
			return fmt.Errorf("looking for %s: %w", tag, err)
		}
		if !found {
			continue
		}
		ir.tally.manifests.Add(1)
		if err := r.warmTree(ctx, mc, repo, sm, ir); err != nil {
			return fmt.Errorf("warming %s: %w", tag, err)
		}
		ir.Signatures = append(ir.Signatures, tag)
	}
	ir.Status = StatusWarmed
	return nil
}

// getThroughCache fetches a manifest through a pull-through cache. distribution answers
// 404 when it could not reach its upstream (429, 503, reset) and has no local copy, so a
// 404 is asked again, attempts times in all, before it is believed. Signature tags, which
// most images lack, get one quick second look; the image's own tag the full schedule.
func (r *run) getThroughCache(ctx context.Context, mc *regClient, repo, ref string, attempts int, wait time.Duration) (*manifest, bool, error) {
	for i := 1; ; i++ {
		m, found, err := mc.getManifest(ctx, repo, ref)
		if err != nil || found || i >= attempts {
			return m, found, err
		}
		r.c.retries.Add(1)
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, r.m.backoff.Max)
	}
}

func (r *run) warmTree(ctx context.Context, mc *regClient, repo string, m *manifest, ir *ImageReport) error {
	children, blobs, err := references(m)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range children {
		g.Go(func() error {
			cm, found, err := mc.getManifest(gctx, repo, c.Digest.String())
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("child manifest %s not found through %s", c.Digest, mc.reg.RegistryStr())
			}
			ir.tally.manifests.Add(1)
			return r.warmTree(gctx, mc, repo, cm, ir)
		})
	}
	for _, b := range blobs {
		g.Go(func() error { return r.warmBlob(gctx, mc, repo, b, ir) })
	}
	return g.Wait()
}

// warmBlob reads one blob through the cache to its end and checks its digest. A blob
// the journal says was warmed recently is skipped. Reads of one digest are serialised
// per cache: distribution streams a blob that is already in flight without storing it
// for the second repository.
func (r *run) warmBlob(ctx context.Context, mc *regClient, repo string, b v1.Descriptor, ir *ImageReport) error {
	digest := b.Digest.String()
	ir.tally.blobs.Add(1)
	host := mc.reg.RegistryStr()
	jkey := host + "/" + repo + "@" + digest
	if r.journal.fresh(jkey) {
		r.blobsSkipped.Add(1)
		return nil
	}
	e := r.blob(host + "|" + digest)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.repos[repo] {
		r.blobsSkipped.Add(1)
		return nil
	}
	sem := r.sem("blob|" + host)
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-sem }()
	read := func() error {
		return retry(ctx, r.m.backoff, &r.c, func() error {
			rc, _, err := mc.openBlob(ctx, repo, digest)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(io.Discard, newVerifyingReader(rc, digest, b.Size, true))
			return err
		})
	}
	if err := read(); err != nil {
		return fmt.Errorf("warming blob %s: %w", digest, err)
	}
	kept, err := r.confirmKept(ctx, mc, repo, digest)
	if err == nil && !kept {
		// The cache's own fetch failed (its upstream cut or throttled it): read again.
		if err = read(); err == nil {
			kept, err = r.confirmKept(ctx, mc, repo, digest)
		}
	}
	if err != nil {
		return fmt.Errorf("warming blob %s: %w", digest, err)
	}
	ep := r.confirming(host)
	switch {
	case kept:
		ep.Store(true)
		r.journal.add(jkey)
	case ep.Load():
		// This cache confirms what it keeps, and it did not keep this blob.
		return fmt.Errorf("warming blob %s: %s read it whole but did not store it", digest, host)
	default:
		// A cache that ignores Range cannot confirm; count the blob as read, not as kept.
		r.m.log.Warn("cache could not confirm it stored a blob", "cache", host, "repo", repo, "digest", digest)
	}
	e.repos[repo] = true
	ir.tally.moved.Add(1)
	ir.tally.bytes.Add(b.Size)
	r.emit(Event{Kind: "blob", Image: ir.Ref, Digest: digest, Bytes: b.Size})
	return nil
}

// confirmKept polls until the cache serves the blob from its own storage, for a few
// seconds at most (its background store runs alongside our read).
func (r *run) confirmKept(ctx context.Context, mc *regClient, repo, digest string) (bool, error) {
	wait := 20 * time.Millisecond
	for i := 0; i < r.m.backoff.Steps+2; i++ {
		// Give the cache's own fetch a moment first: a probe that finds the blob not yet
		// stored is answered with a whole second copy from the upstream.
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, r.m.backoff.Max, time.Second)
		var ok bool
		err := retry(ctx, r.m.backoff, &r.c, func() error {
			var err error
			ok, err = mc.servedLocally(ctx, repo, digest)
			return err
		})
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}
