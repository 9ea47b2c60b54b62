package registry

import (
	"context"
	"fmt"
	"io"
	"sync"
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
		if !found && ep.Mode == ModeAuto {
			// Unprobed (see Run): a plain registry simply does not have it yet.
			ir.note("not at %s yet: a real run probes the endpoint, then pushes or warms", ep.Host)
			ir.Status = StatusPlanned
			return nil
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
	tagCurrent := m.Digest == ir.Digest
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
	// The cache just served the tag at the expected digest and every signature tag:
	// that is what verification would ask again.
	ir.current = tagCurrent
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
	if e.last != "" {
		// Another repository read this blob through the cache a moment ago. distribution
		// tracks its background stores by digest alone: a read while that store is still
		// running is streamed without being stored for this repository. Let it finish.
		r.waitKept(ctx, mc, e.last, digest)
	}
	if err := r.readBlob(ctx, mc, repo, digest, b.Size); err != nil {
		return fmt.Errorf("warming blob %s: %w", digest, err)
	}
	e.last = repo
	r.mu.Lock()
	r.pending = append(r.pending, warmedBlob{mc: mc, repo: repo, digest: digest, size: b.Size, jkey: jkey, ir: ir})
	r.mu.Unlock()
	e.repos[repo] = true
	ir.tally.moved.Add(1)
	ir.tally.bytes.Add(b.Size)
	r.emit(Event{Kind: "blob", Image: ir.Ref, Digest: digest, Bytes: b.Size})
	return nil
}

// waitKept polls, briefly, until the cache serves digest from its storage for repo.
func (r *run) waitKept(ctx context.Context, mc *regClient, repo, digest string) {
	wait := 50 * time.Millisecond
	for i := 0; i < 6; i++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if ok, err := mc.servedLocally(ctx, repo, digest); err != nil || ok {
			return
		}
		wait *= 2
	}
}

func (r *run) readBlob(ctx context.Context, mc *regClient, repo, digest string, size int64) error {
	return retry(ctx, r.m.backoff, &r.c, func() error {
		rc, _, err := mc.openBlob(ctx, repo, digest)
		if err != nil {
			return err
		}
		defer rc.Close()
		// Size only: the cache checks the digest when it commits its own copy, and
		// confirmWarmed checks that it did.
		_, err = io.Copy(io.Discard, newVerifyingReader(rc, digest, size, false))
		return err
	})
}

// warmedBlob is a blob read whole through a cache, not yet confirmed as kept.
type warmedBlob struct {
	mc                 *regClient
	repo, digest, jkey string
	size               int64
	ir                 *ImageReport
	kept               bool
}

// confirmWarmed checks, after all reads, that the caches kept what was read through them.
// distribution's proxy stores a blob in a background fetch of its own, separate from the
// one that feeds the client, so a blob read whole may still be missing when that fetch
// failed (upstream cut, 429, 503). Checking at the end rather than after each read lets
// those fetches finish: a check that finds a blob not yet stored costs the cache a whole
// second copy from the upstream. A blob still missing after a few rounds is read again,
// which starts a new store. Blobs confirmed go into the journal; images with blobs a
// confirming cache did not keep fail. A cache that never honours Range cannot confirm
// anything: its blobs count as read, with a warning.
func (r *run) confirmWarmed(ctx context.Context) {
	todo := r.pending
	wait := 50 * time.Millisecond
	rounds := r.m.backoff.Steps + 2
	interrupted := false
	if ctx.Err() != nil && len(todo) > 0 {
		// Interrupted: one quick look, so the journal keeps what was done and a rerun
		// does not read it again.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		rounds = 4
		interrupted = true
	}
	for round := 0; len(todo) > 0 && round < rounds; round++ {
		if round > 0 || interrupted {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(wait*2, r.m.backoff.Max, 2*time.Second)
		}
		var wg sync.WaitGroup
		for i := range todo {
			wb := &todo[i]
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem := r.sem("blob|" + wb.mc.reg.RegistryStr())
				sem <- struct{}{}
				defer func() { <-sem }()
				if round >= 2 && !interrupted {
					// Still not stored: read it again to start a fresh store.
					if err := r.readBlob(ctx, wb.mc, wb.repo, wb.digest, wb.size); err != nil {
						return
					}
				}
				ok, err := wb.mc.servedLocally(ctx, wb.repo, wb.digest)
				if err == nil && ok {
					wb.kept = true
					r.confirming(wb.mc.reg.RegistryStr()).Store(true)
					r.journal.add(wb.jkey)
				}
			}()
		}
		wg.Wait()
		var left []warmedBlob
		for _, wb := range todo {
			if !wb.kept {
				left = append(left, wb)
			}
		}
		todo = left
	}
	for _, wb := range todo {
		host := wb.mc.reg.RegistryStr()
		if !r.confirming(host).Load() {
			r.m.log.Warn("cache could not confirm it stored a blob", "cache", host, "repo", wb.repo, "digest", wb.digest)
			continue
		}
		if wb.ir.Status != StatusFailed {
			wb.ir.Status = StatusFailed
			wb.ir.Error = fmt.Sprintf("%s read blob %s whole but did not store it", host, wb.digest)
		}
	}
}
