package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
)

// warmImage pre-seeds a pull-through cache by asking through it for what a node would:
// the manifest by tag (so the cache records the tag), every child manifest by digest,
// and every blob until the cache has stored it (see fillBlob). The image's signature
// tags go the same way, at the same time. Nothing is pushed.
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
		// A pull-through cache cannot be asked anything without filling it: distribution
		// answers a manifest HEAD by fetching and storing the manifest, so even a HEAD
		// writes. The plan says so instead of probing.
		ir.note("%s is (or may be) a pull-through cache, which cannot be probed without populating it: not probed in a dry run", ep.Host)
		ir.Status = StatusPlanned
		return nil
	}
	m, found, tries, err := r.getThroughCache(ctx, mc, repo, at, r.m.backoff.Steps, r.m.backoff.Initial)
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
	if err := r.warmWithSignatures(ctx, mc, repo, ref, m, ir, tries == 1); err != nil {
		return err
	}
	ir.Status = StatusWarmed
	// The cache just served the tag at the expected digest and every signature tag:
	// that is what verification would ask again.
	ir.current = tagCurrent
	return nil
}

// warmWithSignatures warms the image's tree and its signature tags together: each
// lookup of a tag the image lacks is a round trip to the upstream, and one after another
// they were the tail of every image. The tags found are recorded in suffix order.
//
// Which signature tags exist is asked of the upstream itself (a HEAD each, as a push
// does), and only those are pulled through the cache. Asked through the cache, each tag
// the image lacks cost the cache a request and its upstream three (a HEAD, a GET for the
// error's details, a ping), and the answer was worth less: distribution answers 404 as
// well when it could not reach its upstream. Where imgpipe cannot reach the upstream (a
// site whose only way out is the cache, or credentials only the cache holds) it asks
// through the cache instead: see sigsThroughCache.
func (r *run) warmWithSignatures(ctx context.Context, mc *regClient, repo string, ref Ref, m *manifest, ir *ImageReport, healthy bool) error {
	ir.trees = make([]*tree, 1+len(r.m.sigSuffix))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.warmTagged(gctx, mc, repo, m, ir, 0) })
	g.Go(func() error {
		sigs, err := r.upstreamSignatures(gctx, ref, ir.Digest)
		if err != nil {
			r.m.log.Debug("signature tags not asked upstream: asking through the cache", "image", ir.Ref, "err", err)
			return r.sigsThroughCache(gctx, mc, repo, ir, healthy)
		}
		sg, sctx := errgroup.WithContext(gctx)
		for i, suffix := range r.m.sigSuffix {
			tag := sigTag(ir.Digest, suffix)
			k := slices.IndexFunc(sigs, func(s sigRef) bool { return s.tag == tag })
			if k < 0 {
				continue
			}
			sg.Go(func() error { return r.warmUpstreamSignature(sctx, mc, repo, sigs[k], ir, i+1) })
		}
		return sg.Wait()
	})
	if err := g.Wait(); err != nil {
		return err
	}
	for i, suffix := range r.m.sigSuffix {
		if ir.trees[i+1] != nil {
			ir.Signatures = append(ir.Signatures, sigTag(ir.Digest, suffix))
		}
	}
	return nil
}

// upstreamSignatures asks the image's upstream which signature tags it has.
func (r *run) upstreamSignatures(ctx context.Context, ref Ref, digest string) ([]sigRef, error) {
	src, err := r.upstreamClient(ref.Upstream)
	if err != nil {
		return nil, err
	}
	if err := r.reachable(ctx, src); err != nil {
		return nil, err
	}
	return r.signatureTags(ctx, src, ref.Repository, digest)
}

// reachTimeout bounds the one look a warm run takes at whether it can reach an upstream.
const reachTimeout = 5 * time.Second

// reachable asks an upstream's /v2/ once per run, without retries and within
// reachTimeout: any HTTP answer (401 included) means imgpipe can reach it; a site whose
// only way out is the cache must not pay the retry schedule on every image.
func (r *run) reachable(ctx context.Context, c *regClient) error {
	r.mu.Lock()
	st, ok := r.reach[c.reg.RegistryStr()]
	if !ok {
		st = &reachState{}
		r.reach[c.reg.RegistryStr()] = st
	}
	r.mu.Unlock()
	st.once.Do(func() {
		ctx, cancel := context.WithTimeout(ctx, reachTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.reg.Scheme()+"://"+c.reg.RegistryStr()+"/v2/", nil)
		if err != nil {
			st.err = err
			return
		}
		resp, err := r.base.RoundTrip(req)
		if err != nil {
			st.err = fmt.Errorf("upstream %s unreachable: %w", c.reg.RegistryStr(), err)
			return
		}
		resp.Body.Close()
	})
	return st.err
}

// reachState is whether an upstream answered a run's one look.
type reachState struct {
	once sync.Once
	err  error
}

// sigsThroughCache looks for every signature tag through the cache. distribution answers
// 404 for a tag when it could not reach its upstream, so a 404 is worth a second look,
// but only when the cache has just shown it may be flaky: healthy says it resolved the
// image's own tag at the first attempt, moments ago. Then a 404 is believed.
func (r *run) sigsThroughCache(ctx context.Context, mc *regClient, repo string, ir *ImageReport, healthy bool) error {
	attempts := 2
	if healthy {
		attempts = 1
	}
	g, gctx := errgroup.WithContext(ctx)
	for i, suffix := range r.m.sigSuffix {
		tag := sigTag(ir.Digest, suffix)
		g.Go(func() error { return r.warmSignature(gctx, mc, repo, tag, ir, i+1, attempts, false) })
	}
	return g.Wait()
}

// warmUpstreamSignature warms a signature tag the upstream has, at the digest it gave.
// A digest the journal records as warmed whole, whose canary the cache still serves, is
// done: the cache took the tag when it was warmed, and the upstream says it has not
// moved. Otherwise it is pulled through the cache; a 404 there is the cache failing to
// reach its upstream, asked again on the image's own schedule.
func (r *run) warmUpstreamSignature(ctx context.Context, mc *regClient, repo string, s sigRef, ir *ImageReport, slot int) error {
	if n, ok := r.stillWarm(ctx, mc, repo, s.digest); ok {
		ir.trees[slot] = &tree{digest: s.digest, whole: true}
		ir.tally.manifests.Add(1)
		ir.tally.blobs.Add(int64(n))
		r.blobsSkipped.Add(int64(n))
		return nil
	}
	return r.warmSignature(ctx, mc, repo, s.tag, ir, slot, r.m.backoff.Steps, true)
}

// warmSignature pulls a signature tag through the cache and warms its tree into
// ir.trees[slot]. A tag the cache does not find (after attempts GETs) is left out, or,
// when upstream says it exists, fails the image: the cache could not fetch it.
func (r *run) warmSignature(ctx context.Context, mc *regClient, repo, tag string, ir *ImageReport, slot, attempts int, upstream bool) error {
	sm, found, _, err := r.getThroughCache(ctx, mc, repo, tag, attempts, min(r.m.backoff.Initial, 20*time.Millisecond))
	if err != nil {
		return fmt.Errorf("looking for %s: %w", tag, err)
	}
	if !found {
		if upstream {
			return fmt.Errorf("%s is upstream but not found through %s", tag, mc.reg.RegistryStr())
		}
		return nil
	}
	ir.tally.manifests.Add(1)
	if err := r.warmTagged(ctx, mc, repo, sm, ir, slot); err != nil {
		return fmt.Errorf("warming %s: %w", tag, err)
	}
	return nil
}

// tree is one tagged manifest being warmed (the image, or one of its signature tags)
// and the blobs found under it, for the image-level journal entry (see recordWarmed).
type tree struct {
	digest string
	// whole says the journal's image entry, re-checked, stood for the whole tree.
	whole bool
	mu    sync.Mutex
	// leaves are the image manifests under the tree (one per platform of an index), each
	// with the blobs it lists.
	leaves map[string]map[string]bool
}

func (t *tree) add(leaf, blob string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.leaves[leaf] == nil {
		t.leaves[leaf] = map[string]bool{}
	}
	t.leaves[leaf][blob] = true
}

// blobCount is how many distinct blobs the tree has.
func (t *tree) blobCount() int {
	all := map[string]bool{}
	for _, bs := range t.leaves {
		for b := range bs {
			all[b] = true
		}
	}
	return len(all)
}

// warmTagged warms the tree under a tagged manifest into ir.trees[slot] (each slot has
// one writer). A tree the journal records as warmed whole, whose canary blobs (one per
// platform) the cache still serves from storage, is not walked: those ranged GETs stand
// for its blobs.
func (r *run) warmTagged(ctx context.Context, mc *regClient, repo string, m *manifest, ir *ImageReport, slot int) error {
	t := &tree{digest: m.Digest, leaves: map[string]map[string]bool{}}
	ir.trees[slot] = t
	if n, ok := r.stillWarm(ctx, mc, repo, m.Digest); ok {
		t.whole = true
		ir.tally.blobs.Add(int64(n))
		r.blobsSkipped.Add(int64(n))
		return nil
	}
	return r.warmTree(ctx, mc, repo, m, ir, t)
}

// stillWarm re-checks an image-level journal entry by cache identity plus expiry: the
// entry is fresh (younger than the journal's TTL, which is shorter than the cache's), and
// the cache serves each of the entry's canaries from its own storage. There is one canary
// per platform, the platform's first blob to expire: a cache wiped and then refilled by
// nodes pulling their own platform holds that platform's canary again, not the others'.
// It returns the number of blobs the entry stands for.
func (r *run) stillWarm(ctx context.Context, mc *regClient, repo, digest string) (int, bool) {
	e, ok := r.journal.image(mc.reg.RegistryStr() + "/" + repo + "@" + digest)
	if !ok {
		return 0, false
	}
	sem := r.sem("blob|" + mc.reg.RegistryStr())
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return 0, false
	}
	defer func() { <-sem }()
	for _, canary := range e.Canaries {
		if !r.canaryKept(ctx, mc, repo, canary) {
			return 0, false // walk it: every blob's own entry is re-checked, or warmed again
		}
	}
	return e.Blobs, true
}

// canaryKept asks whether the cache serves a canary from its storage. Asking for a blob
// the cache lacks starts its store, so a second look at the same canary in this run would
// find it and wrongly vouch for the rest of its tree: a canary found missing stays
// missing for the run.
func (r *run) canaryKept(ctx context.Context, mc *regClient, repo, canary string) bool {
	key := mc.reg.RegistryStr() + "|" + repo + "|" + canary
	r.mu.Lock()
	missed := r.canaryMissed[key]
	r.mu.Unlock()
	if missed {
		return false
	}
	if kept, err := r.stored(ctx, mc, repo, canary); err != nil || !kept {
		r.mu.Lock()
		r.canaryMissed[key] = true
		r.mu.Unlock()
		return false
	}
	return true
}

// getThroughCache fetches a manifest through a pull-through cache. distribution answers
// 404 when it could not reach its upstream (429, 503, reset) and has no local copy, so a
// 404 is asked again, attempts times in all, before it is believed: the image's own tag
// and a signature tag the upstream has get the full schedule, a signature tag looked for
// only through the cache one or two looks (see sigsThroughCache). tries is how many GETs
// it took, counting the client's retries of 429 and 5xx; those are read off the run's
// counter, so other images' retries meanwhile count too: a busy run looks twice more
// often, never once too few.
func (r *run) getThroughCache(ctx context.Context, mc *regClient, repo, ref string, attempts int, wait time.Duration) (m *manifest, found bool, tries int, err error) {
	before := r.c.retries.Load()
	for i := 1; ; i++ {
		m, found, err = mc.getManifest(ctx, repo, ref)
		if err != nil || found || i >= attempts {
			return m, found, i + int(r.c.retries.Load()-before), err
		}
		r.c.retries.Add(1)
		if err := r.m.backoff.wait(ctx, wait); err != nil {
			return nil, false, i, err
		}
		wait = min(wait*2, r.m.backoff.Max)
	}
}

func (r *run) warmTree(ctx context.Context, mc *regClient, repo string, m *manifest, ir *ImageReport, t *tree) error {
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
			return r.warmTree(gctx, mc, repo, cm, ir, t)
		})
	}
	for _, b := range blobs {
		g.Go(func() error { return r.warmBlob(gctx, mc, repo, b, m.Digest, ir, t) })
	}
	return g.Wait()
}

// warmBlob makes the cache store one blob for repo. A blob the journal lists is only
// asked for (one ranged GET: the journal is a hint, the cache may have been wiped or may
// have expired it); anything else is filled. Work on one digest is serialised per cache:
// distribution tracks its background stores by digest alone, and a read while another
// repository's store is running is streamed without being stored for this repository.
func (r *run) warmBlob(ctx context.Context, mc *regClient, repo string, b v1.Descriptor, leaf string, ir *ImageReport, t *tree) error {
	digest := b.Digest.String()
	ir.tally.blobs.Add(1)
	t.add(leaf, digest)
	host := mc.reg.RegistryStr()
	jkey := host + "/" + repo + "@" + digest
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
	triggered := false
	if r.journal.fresh(jkey) {
		ok, err := r.stored(ctx, mc, repo, digest)
		if err == nil && ok {
			e.repos[repo] = true
			r.blobsSkipped.Add(1)
			return nil
		}
		r.journalStale.Add(1)
		// A 200 to that ranged GET was the cache fetching the blob: its store has begun.
		triggered = err == nil
	}
	if e.last != "" {
		// Another repository read this blob through the cache and did not see it stored:
		// let that store finish before this read, or this one is not stored.
		r.waitKept(ctx, mc, e.last, digest)
	}
	kept, err := r.fillBlob(ctx, mc, repo, digest, b.Size, triggered)
	if err != nil {
		return fmt.Errorf("warming blob %s: %w", digest, err)
	}
	e.repos[repo] = true
	if kept {
		r.journal.add(jkey)
	} else {
		e.last = repo
		r.mu.Lock()
		r.pending = append(r.pending, warmedBlob{mc: mc, repo: repo, digest: digest, size: b.Size, jkey: jkey, ir: ir})
		r.mu.Unlock()
	}
	ir.tally.moved.Add(1)
	ir.tally.bytes.Add(b.Size)
	r.emit(Event{Kind: "blob", Image: ir.Ref, Digest: digest, Bytes: b.Size})
	return nil
}

// stored is one ranged GET asking whether the cache serves digest from its own storage
// for repo; a 429 is asked again after the wait the cache named.
func (r *run) stored(ctx context.Context, mc *regClient, repo, digest string) (bool, error) {
	var ok bool
	err := retry(ctx, r.m.backoff, &r.c, func() error {
		var err error
		ok, err = mc.servedLocally(ctx, repo, digest)
		return err
	})
	return ok, err
}

// fillBlob has the cache store a blob it does not hold. distribution's proxy answers a
// GET of such a blob with two fetches from its upstream: one streamed to the client and
// one, in the background, into its storage, which goes on when the client hangs up.
// Reading the stream to its end therefore moves every byte twice and costs the client a
// full read, for nothing the store needs. So the blob is asked for with a ranged GET
// (which the cache answers 206 from its own storage when it holds the blob already, and
// otherwise with the whole blob from upstream, 200, starting the store) and the response
// is dropped at its headers; ranged GETs then ask, spaced out, until the cache serves
// the blob from storage. triggered says a ranged GET of this run already started the
// store. A cache that does not show it stored in good time (no Range support, or one
// that stores only what its client reads) gets a whole read instead, and the blob is
// confirmed at the end of the run. kept says the cache confirmed it.
func (r *run) fillBlob(ctx context.Context, mc *regClient, repo, digest string, size int64, triggered bool) (kept bool, err error) {
	host := mc.reg.RegistryStr()
	if !r.readsWhole(host) {
		err = retry(ctx, r.m.backoff, &r.c, func() error {
			if !triggered {
				local, err := mc.servedLocally(ctx, repo, digest)
				if err != nil || local {
					kept = local
					return err
				}
			}
			triggered = false // a retry asks again
			kept, err = r.waitStored(ctx, mc, repo, digest, size)
			return err
		})
		if err != nil || kept {
			return kept, err
		}
	}
	return false, r.readBlob(ctx, mc, repo, digest, size)
}

// waitStored polls until the cache serves digest from storage for repo. The first poll
// comes when the store rate seen on this cache says the blob should be in, then the
// time waited grows by half (capped at 1s), so a slow store costs a few polls, not hundreds;
// a 429 is asked again when the cache said. It returns false when the cache never
// confirmed in good time.
func (r *run) waitStored(ctx context.Context, mc *regClient, repo, digest string, size int64) (bool, error) {
	host := mc.reg.RegistryStr()
	expect := r.expectStore(host, size)
	patience := 5*time.Second + 4*expect
	if r.confirming(host).Load() {
		// This cache confirms: a slow blob is slow, not a cache that never will.
		patience = time.Minute + time.Duration(size/(1<<20))*time.Second
	}
	start := time.Now()
	var missed time.Duration // when a poll last found the blob not yet stored
	wait := max(expect, 10*time.Millisecond)
	for {
		if err := r.m.backoff.wait(ctx, wait); err != nil {
			return false, err
		}
		ok, err := mc.servedLocally(ctx, repo, digest)
		if err == nil && ok {
			r.confirming(host).Store(true)
			// The store ended between the last miss and now: learn the midpoint, not the
			// overrun, or the estimate (and the next first poll) drifts later and later.
			r.noteStore(host, size, (missed+time.Since(start))/2)
			return true, nil
		}
		missed = time.Since(start)
		if err != nil && !retryable(err) {
			return false, err
		}
		// Grow the time waited by half: each poll of a blob still being stored costs the
		// cache an upstream fetch it drops at once, so polls stay few (log1.5 of the
		// overrun), and the overrun past the store stays under half of it.
		waited := time.Since(start)
		wait = min(max(waited/2, 10*time.Millisecond), time.Second)
		if ra, isRA := serverWait(err); isRA {
			// Throttled: ask again when the cache said; that wait is the cache's, not
			// a sign that it will never confirm.
			wait = ra
			patience += ra
		}
		if waited+wait > patience {
			r.giveUpAsking(host)
			return false, nil
		}
	}
}

// waitKept polls, briefly, until the cache serves digest from its storage for repo. A
// 429 is asked again when the cache said.
func (r *run) waitKept(ctx context.Context, mc *regClient, repo, digest string) {
	wait := 50 * time.Millisecond
	for i := 0; i < 6; i++ {
		if r.m.backoff.wait(ctx, wait) != nil {
			return
		}
		ok, err := mc.servedLocally(ctx, repo, digest)
		if ra, isRA := serverWait(err); isRA {
			wait = ra
			continue
		}
		if err != nil || ok {
			return
		}
		wait *= 2
	}
}

// readBlob reads a blob through the cache to its end.
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
	var asked atomic.Int64 // the longest Retry-After of a round, in nanoseconds
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
			// A cache that answered 429 gets at least the wait it asked for.
			if r.m.backoff.wait(ctx, max(wait, time.Duration(asked.Load()))) != nil {
				return
			}
			wait = min(wait*2, r.m.backoff.Max, 2*time.Second)
			asked.Store(0)
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
				if ra, isRA := serverWait(err); isRA {
					for cur := asked.Load(); int64(ra) > cur && !asked.CompareAndSwap(cur, int64(ra)); cur = asked.Load() {
					}
				}
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
