package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
)

// Outcomes of a check, per image and per signature.
const (
	CheckOK        = "ok"
	CheckMissing   = "missing"
	CheckDifferent = "different"
	// CheckUnchecked means the mirror could not be read (named with the cause).
	CheckUnchecked = "unchecked"
	// CheckSkipped means there is nothing to compare: no mirror is configured for
	// the image's upstream.
	CheckSkipped = "skipped"
)

// CacheNote is what a check says about pull-through caches: reading through them is
// what fills them, so a default check does not.
const CacheNote = "pull-through caches are checked through the warm journal and a HEAD by digest, " +
	"which does not refill them; --deep reads every blob's first byte through the cache, " +
	"and a blob the cache lost is fetched from its upstream again by that read (the check refills it)"

// CheckOptions shape a check of the mirrors.
type CheckOptions struct {
	// Deep reads every blob: push targets stream each blob and check its digest;
	// pull-through caches are asked for each blob's first byte, which tells a stored
	// blob from one the cache must fetch (and refills it).
	Deep bool
	// Signed reports whether an image must carry a signature at its mirror (a
	// policy requires one). Nil: no image must.
	Signed func(Image) bool
	// Now is the check's clock for journal ages (default time.Now).
	Now func() time.Time
}

// ImageCheck is what a check found for one image at its mirror.
type ImageCheck struct {
	Role     string `json:"role"`
	Ref      string `json:"ref"`
	Digest   string `json:"digest,omitempty"`
	Mirror   string `json:"mirror,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	Mode     Mode   `json:"mode,omitempty"`
	Status   string `json:"status"`
	// TagDigest is what the mirror's tag resolves to when that differs from Digest.
	TagDigest string `json:"tag_digest,omitempty"`
	// Absent lists the manifests and blobs of the image the mirror does not hold.
	Absent []string `json:"absent,omitempty"`
	Detail string   `json:"detail,omitempty"`
	// Signature is set when a policy requires the image to be signed.
	Signature *SignatureCheck `json:"signature,omitempty"`
}

// SignatureCheck is the signature side of an image at its mirror.
type SignatureCheck struct {
	Status string `json:"status"`
	// Tags are the signature tags found (cosign .sig, or the sha256-<hex> referrers tag).
	Tags   []string `json:"tags,omitempty"`
	Detail string   `json:"detail,omitempty"`
}

// CheckReport is a check of every image of a lock at its mirror.
type CheckReport struct {
	Images   []ImageCheck `json:"images"`
	Notes    []string     `json:"notes,omitempty"`
	Requests int64        `json:"requests"`
}

// Check compares the site's mirrors with the placed images, reading only. Push
// targets are read plainly (manifests by digest, every blob by HEAD, the tag, the
// signature tags). Pull-through caches answer every read from their upstream when
// they lack something and keep what was read, so by default they are checked
// through the warm journal (imgpipe confirmed the cache stored the image, within
// the journal's TTL) plus a HEAD by digest; CheckOptions.Deep reads each blob's first
// byte. ModeAuto endpoints are told apart as mirror does, by opening an upload
// session and cancelling it at once. An image is "ok" only when what was read shows it.
func (m *Mirrorer) Check(ctx context.Context, placements []Placement, o CheckOptions) (*CheckReport, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	r := m.newRun()
	rep := &CheckReport{Images: make([]ImageCheck, len(placements))}
	// The check's own reading of the journal, on its clock; none when it is off.
	var jerr error
	r.journal = nil
	if m.journal != "" {
		r.journal, jerr = loadJournal(m.journal, m.journalTT, o.Now())
	}
	modes := &modeCache{modes: map[string]*modeResult{}}
	var wg sync.WaitGroup
	caches := false
	for i, p := range placements {
		ic := &rep.Images[i]
		ic.Role, ic.Ref, ic.Digest, ic.Mirror, ic.Endpoint = p.Role, p.Ref, p.Digest, p.Mirror, p.Endpoint.Host
		if p.Unmirrored {
			ref, _ := ParseRef(p.Ref)
			ic.Status, ic.Detail = CheckSkipped, fmt.Sprintf("%s %s: nothing to check", ErrNoMirror, ref.Upstream)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem := r.sem("img|" + p.Endpoint.Host)
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				ic.Status, ic.Detail = CheckUnchecked, ctx.Err().Error()
				return
			}
			defer func() { <-sem }()
			r.checkImage(ctx, p, modes, o, jerr, ic)
		}()
	}
	wg.Wait()
	var byTag []string
	for i, ic := range rep.Images {
		caches = caches || ic.Mode == ModeWarm
		if placements[i].Digest == "" && !placements[i].Unmirrored {
			byTag = append(byTag, ic.Ref)
		}
	}
	if len(byTag) > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d images have no digest in the lock and were checked by tag only (a retag cannot be seen): %s; imgpipe mirror --pin records the digests it can",
			len(byTag), strings.Join(byTag, ", ")))
	}
	if caches {
		rep.Notes = append(rep.Notes, CacheNote)
		if jerr != nil {
			rep.Notes = append(rep.Notes, "warm journal unreadable: "+jerr.Error())
		}
	}
	rep.Requests = r.c.requests.Load()
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("checking mirrors: %w", err)
	}
	return rep, nil
}

// modeCache resolves each auto endpoint's mode once per check.
type modeCache struct {
	mu    sync.Mutex
	modes map[string]*modeResult
}

type modeResult struct {
	once sync.Once
	mode Mode
	err  error

	pingOnce sync.Once
	pingErr  error
}

func (mc *modeCache) result(host string) *modeResult {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	res, ok := mc.modes[host]
	if !ok {
		res = &modeResult{}
		mc.modes[host] = res
	}
	return res
}

// reach pings an endpoint once per check, so that a registry that does not answer
// makes its images unchecked at once instead of each one retrying on its own.
func (mc *modeCache) reach(ctx context.Context, r *run, ep Endpoint) error {
	res := mc.result(ep.Host)
	res.pingOnce.Do(func() {
		c, err := r.endpointClient(ep)
		if err == nil {
			_, err = c.sharedTransport(ctx)
		}
		res.pingErr = err
	})
	return res.pingErr
}

func (mc *modeCache) resolve(ctx context.Context, r *run, ep Endpoint, repo string) (Mode, error) {
	if ep.Mode != ModeAuto && ep.Mode != "" {
		return ep.Mode, nil
	}
	res := mc.result(ep.Host)
	res.once.Do(func() { res.mode, res.err = r.probe(ctx, ep, repo) })
	return res.mode, res.err
}

// checkImage fills ic for one mirrored image.
func (r *run) checkImage(ctx context.Context, p Placement, modes *modeCache, o CheckOptions, jerr error, ic *ImageCheck) {
	ref, err := ParseRef(p.Ref)
	if err != nil {
		ic.Status, ic.Detail = CheckUnchecked, err.Error()
		return
	}
	ep := p.Endpoint
	repo := ref.at(ep).Repository
	if err := modes.reach(ctx, r, ep); err != nil {
		ic.Status, ic.Detail = CheckUnchecked, err.Error()
		return
	}
	mode, err := modes.resolve(ctx, r, ep, repo)
	if err != nil {
		ic.Status, ic.Detail = CheckUnchecked, err.Error()
		return
	}
	ic.Mode = mode
	mc, err := r.endpointClient(ep)
	if err != nil {
		ic.Status, ic.Detail = CheckUnchecked, err.Error()
		return
	}
	if err := r.checkManifest(ctx, mc, repo, ref, ic); err != nil {
		ic.Status, ic.Detail = CheckUnchecked, err.Error()
		return
	}
	if ic.Status == "" {
		var err error
		switch {
		case mode == ModeWarm && !o.Deep:
			r.checkJournal(mc, repo, o, jerr, ic)
		default:
			err = r.checkContent(ctx, mc, repo, mode, o.Deep, ic)
		}
		if err != nil {
			ic.Status, ic.Detail = CheckUnchecked, err.Error()
			return
		}
	}
	if o.Signed != nil && o.Signed(p.Image) && ic.Digest != "" {
		ic.Signature = r.checkSignature(ctx, mc, repo, ic.Digest, mode)
	}
}

// checkManifest resolves the image's digest at the mirror (HEAD, which a cache does
// not store) and compares the tag. It sets ic.Status when the image is missing or
// its tag names another digest; otherwise it leaves Status empty for the content check.
func (r *run) checkManifest(ctx context.Context, mc *regClient, repo string, ref Ref, ic *ImageCheck) error {
	tagDigest, tagFound := "", false
	if ref.Tag != "" {
		var err error
		if tagDigest, tagFound, err = mc.headManifest(ctx, repo, ref.Tag); err != nil {
			return err
		}
	}
	if ic.Digest == "" {
		// The lock pins no digest (installers, the catalog, unpinned images): the
		// mirror's tag is all there is to check.
		if !tagFound {
			ic.Status, ic.Detail = CheckMissing, fmt.Sprintf("tag %s not found at %s", ref.Tag, mc.reg.RegistryStr())
			return nil
		}
		ic.Digest = tagDigest
		ic.Detail = "the lock pins no digest: checked the digest the mirror's tag names"
		return nil
	}
	_, found, err := mc.headManifest(ctx, repo, ic.Digest)
	if err != nil {
		return err
	}
	switch {
	case !found:
		ic.Status, ic.Absent = CheckMissing, []string{ic.Digest}
		ic.Detail = fmt.Sprintf("manifest %s not found at %s", ic.Digest, mc.reg.RegistryStr())
	case ref.Tag != "" && !tagFound:
		ic.Status, ic.Detail = CheckMissing, fmt.Sprintf("tag %s not found at %s (the digest is there)", ref.Tag, mc.reg.RegistryStr())
	case ref.Tag != "" && tagDigest != ic.Digest:
		ic.Status, ic.TagDigest = CheckDifferent, tagDigest
		ic.Detail = fmt.Sprintf("tag %s resolves to %s at %s, the lock says %s", ref.Tag, tagDigest, mc.reg.RegistryStr(), ic.Digest)
	}
	return nil
}

// checkJournal decides a pull-through cache's image from the warm journal: imgpipe
// recorded it as stored by the cache (every blob confirmed) less than the TTL ago.
func (r *run) checkJournal(mc *regClient, repo string, o CheckOptions, jerr error, ic *ImageCheck) {
	if r.journal == nil {
		ic.Status, ic.Detail = CheckUnchecked, "no warm journal (--journal off): a pull-through cache can then only be checked with --deep"
		return
	}
	key := mc.reg.RegistryStr() + "/" + repo + "@" + ic.Digest
	when, ok := r.journal.entry(key)
	if !ok {
		ic.Status = CheckMissing
		ic.Detail = fmt.Sprintf("the warm journal has no record of the cache storing %s within %s: it may have expired it; run imgpipe mirror", ic.Digest, r.m.journalTT)
		if jerr != nil {
			ic.Detail += " (journal unreadable: " + jerr.Error() + ")"
		}
		return
	}
	ic.Status = CheckOK
	age := o.Now().Sub(when).Round(time.Minute)
	ic.Detail = strings.TrimPrefix(ic.Detail+"; ", "; ") + fmt.Sprintf("warm journal: stored by the cache %s ago; digest resolves through the cache (HEAD)", age)
}

// checkContent walks the image's manifests by digest and checks every blob: HEAD on
// a plain registry, the whole blob with --deep; on a cache (only with --deep) the
// blob's first byte, which a cache serves from storage only when it holds the blob.
func (r *run) checkContent(ctx context.Context, mc *regClient, repo string, mode Mode, deep bool, ic *ImageCheck) error {
	w := &contentWalk{r: r, mc: mc, repo: repo, mode: mode, deep: deep}
	if err := w.walk(ctx, ic.Digest); err != nil {
		return err
	}
	slices.Sort(w.absent)
	if len(w.absent) > 0 {
		ic.Status, ic.Absent = CheckMissing, w.absent
		ic.Detail = fmt.Sprintf("%d of the image's manifests and blobs are not at %s", len(w.absent), mc.reg.RegistryStr())
		if mode == ModeWarm {
			ic.Detail += " (the cache did not hold them; this check's read started a refill)"
		}
		return nil
	}
	ic.Status = CheckOK
	how := "every blob present (HEAD)"
	switch {
	case mode == ModeWarm:
		how = "every blob served from the cache's own storage (first-byte read)"
	case deep:
		how = "every blob read whole and its digest checked"
	}
	ic.Detail = strings.TrimPrefix(ic.Detail+"; ", "; ") + fmt.Sprintf("%d blobs: %s", w.blobs.Load(), how)
	return nil
}

// contentWalk collects what an image's tree lacks at a mirror.
type contentWalk struct {
	r    *run
	mc   *regClient
	repo string
	mode Mode
	deep bool

	mu     sync.Mutex
	absent []string
	blobs  atomic.Int64
}

func (w *contentWalk) miss(d string) {
	w.mu.Lock()
	w.absent = append(w.absent, d)
	w.mu.Unlock()
}

// walk checks a manifest and, concurrently, its children and blobs.
func (w *contentWalk) walk(ctx context.Context, digest string) error {
	m, found, err := w.mc.getManifest(ctx, w.repo, digest)
	if err != nil {
		return err
	}
	if !found {
		w.miss(digest)
		return nil
	}
	children, bs, err := references(m)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(w.r.m.jobs)
	for _, c := range children {
		g.Go(func() error { return w.walk(gctx, c.Digest.String()) })
	}
	for _, b := range bs {
		g.Go(func() error {
			w.blobs.Add(1)
			ok, err := w.r.blobPresent(gctx, w.mc, w.repo, b, w.mode, w.deep)
			if err == nil && !ok {
				w.miss(b.Digest.String())
			}
			return err
		})
	}
	return g.Wait()
}

// blobPresent checks one blob in the way the mode allows.
func (r *run) blobPresent(ctx context.Context, mc *regClient, repo string, b v1.Descriptor, mode Mode, deep bool) (bool, error) {
	d := b.Digest.String()
	switch {
	case mode == ModeWarm:
		var ok bool
		err := retry(ctx, r.m.backoff, &r.c, func() error {
			var err error
			ok, err = mc.servedLocally(ctx, repo, d)
			if statusOf(err) == http.StatusNotFound {
				ok, err = false, nil
			}
			return err
		})
		return ok, err
	case deep:
		return r.readVerified(ctx, mc, repo, b)
	default:
		return mc.headBlob(ctx, repo, d, false, r.m.backoff, &r.c) // pull scope: a check needs no push rights
	}
}

// readVerified streams a blob whole and checks its size and digest.
func (r *run) readVerified(ctx context.Context, mc *regClient, repo string, b v1.Descriptor) (bool, error) {
	d := b.Digest.String()
	found := true
	err := retry(ctx, r.m.backoff, &r.c, func() error {
		rc, _, err := mc.openBlob(ctx, repo, d)
		if statusOf(err) == http.StatusNotFound {
			found = false
			return nil
		}
		if err != nil {
			return err
		}
		defer rc.Close()
		h := sha256.New()
		n, err := io.Copy(h, rc)
		if err != nil {
			return err
		}
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); n != b.Size || (strings.HasPrefix(d, "sha256:") && got != d) {
			found = false // corrupt: not the blob the manifest names
		}
		return nil
	})
	return found, err
}

// checkSignature looks for the image's signature at the mirror: the cosign .sig tag
// or the sha256-<hex> tag that stands for referrers where a registry lacks the API.
// A HEAD by tag through a cache asks its upstream first: the detail says so.
func (r *run) checkSignature(ctx context.Context, mc *regClient, repo, digest string, mode Mode) *SignatureCheck {
	sc := &SignatureCheck{}
	for _, tag := range []string{sigTag(digest, ".sig"), sigTag(digest, "")} {
		_, found, err := mc.headManifest(ctx, repo, tag)
		if err != nil {
			sc.Status, sc.Detail = CheckUnchecked, err.Error()
			return sc
		}
		if found {
			sc.Tags = append(sc.Tags, tag)
		}
	}
	if len(sc.Tags) == 0 {
		sc.Status = CheckMissing
		sc.Detail = fmt.Sprintf("no %s or %s tag at %s: a policy requires a signature; run imgpipe mirror",
			sigTag(digest, ".sig"), sigTag(digest, ""), mc.reg.RegistryStr())
		return sc
	}
	sc.Status = CheckOK
	if mode == ModeWarm {
		sc.Detail = "signature tag resolves through the cache"
	}
	return sc
}

// entry returns when a key was recorded, if it is fresh.
func (j *journal) entry(key string) (time.Time, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	t, ok := j.Entries[key]
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(t, 0), true
}

// recordWarmed adds an image-level entry (cache host/repo@digest) to the journal for
// every tree (an image, a signature tag) this run warmed blob by blob and verified,
// dated by the oldest of its blobs' entries: that is when the cache's expiry clock
// started for it. A check reads these entries instead of pulling through the caches, and
// a rerun re-checks them by their canary (see imageEntry). A tree with a blob the journal
// does not hold (its cache never confirmed storing it) gets no entry. The blobs are the
// ones the run itself walked: nothing is fetched again.
func (r *run) recordWarmed(placements []Placement, rep *Report) {
	for i, p := range placements {
		ir := &rep.Images[i]
		if ir.Mode != ModeWarm || ir.Status != StatusWarmed || !ir.Verified || ir.Digest == "" {
			continue
		}
		ref, err := ParseRef(p.Ref)
		if err != nil {
			continue
		}
		mc, err := r.endpointClient(p.Endpoint)
		if err != nil {
			continue
		}
		prefix := mc.reg.RegistryStr() + "/" + ref.at(p.Endpoint).Repository + "@"
		for _, t := range ir.trees {
			if t == nil || t.whole || len(t.leaves) == 0 {
				continue
			}
			if oldest, canaries, ok := r.oldestEntries(prefix, t); ok {
				r.journal.addImage(prefix+t.digest, oldest, imageEntry{Canaries: canaries, Blobs: t.blobCount()})
			}
		}
	}
}

// oldestEntries is the oldest journal time among a tree's blobs and, per image manifest
// of the tree, its canary: the blob with the oldest entry (the smallest digest among
// equals), sorted. ok is false when a blob has no entry.
func (r *run) oldestEntries(prefix string, t *tree) (oldest int64, canaries []string, ok bool) {
	oldest = math.MaxInt64
	for _, blobs := range t.leaves {
		first, canary := int64(math.MaxInt64), ""
		for d := range blobs {
			when, ok := r.journal.entry(prefix + d)
			if !ok {
				return 0, nil, false
			}
			if ts := when.Unix(); ts < first || ts == first && d < canary {
				first, canary = ts, d
			}
		}
		oldest = min(oldest, first)
		if !slices.Contains(canaries, canary) {
			canaries = append(canaries, canary)
		}
	}
	slices.Sort(canaries)
	return oldest, canaries, true
}
