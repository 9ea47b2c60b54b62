package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Image statuses in a Report.
const (
	StatusCopied     = "copied"     // push: something was written
	StatusPresent    = "present"    // push: the mirror already had it all
	StatusWarmed     = "warmed"     // warm: every manifest and blob was read through the cache
	StatusPlanned    = "planned"    // dry run
	StatusUnmirrored = "unmirrored" // no endpoint for the upstream host
	StatusFailed     = "failed"
)

// ErrIncomplete means at least one image could not be mirrored or verified; the report
// says which and why.
var ErrIncomplete = errors.New("mirroring incomplete")

// Event is a progress notification; events arrive from many goroutines, in any order.
type Event struct {
	Kind   string // "blob" when a blob is moved, "image" when an image is finished
	Image  string // the image's upstream reference
	Status string // for images: one of the Status constants
	Digest string
	Bytes  int64 // blob size for blob events
}

// Mirrorer copies or warms images into local registries. Build it with New; a Mirrorer
// may run several times, each Run has its own state.
type Mirrorer struct {
	jobs      int
	dryRun    bool
	keychain  authn.Keychain
	base      http.RoundTripper
	backoff   Backoff
	journal   string
	journalTT time.Duration
	progress  func(Event)
	log       *slog.Logger
	sigSuffix []string
	idle      time.Duration
}

// Option configures a Mirrorer.
type Option func(*Mirrorer)

// WithJobs bounds concurrent blob transfers per registry endpoint (default 8).
func WithJobs(n int) Option {
	return func(m *Mirrorer) {
		if n > 0 {
			m.jobs = n
		}
	}
}

// WithDryRun reads sources and mirrors as a real run would, but writes nothing and
// pulls nothing through caches.
func WithDryRun(b bool) Option { return func(m *Mirrorer) { m.dryRun = b } }

// WithKeychain sets where registry credentials come from (default: anonymous).
func WithKeychain(k authn.Keychain) Option { return func(m *Mirrorer) { m.keychain = k } }

// WithTransport sets the base HTTP transport (default: a clone of http.DefaultTransport).
func WithTransport(rt http.RoundTripper) Option { return func(m *Mirrorer) { m.base = rt } }

// WithBackoff sets the retry schedule.
func WithBackoff(b Backoff) Option { return func(m *Mirrorer) { m.backoff = b } }

// WithJournal keeps a record of what was warmed through pull-through caches at path, so
// a rerun reads only what is missing. Entries older than ttl are redone, because the
// caches expire content (distribution 2.8 after 168h). A zero ttl means 6 days.
func WithJournal(path string, ttl time.Duration) Option {
	return func(m *Mirrorer) {
		m.journal = path
		if ttl > 0 {
			m.journalTT = ttl
		}
	}
}

// WithTimeout bounds every registry request: one that makes no progress for d (no
// response headers, no body bytes either way) is cancelled and retried. Default 1 minute;
// it is an idle timeout, so a large blob that keeps moving is never cut.
func WithTimeout(d time.Duration) Option {
	return func(m *Mirrorer) {
		if d > 0 {
			m.idle = d
		}
	}
}

// WithProgress receives progress events; it must be safe for concurrent use.
func WithProgress(f func(Event)) Option { return func(m *Mirrorer) { m.progress = f } }

// WithLogger sets the logger for debug details (default: silent).
func WithLogger(l *slog.Logger) Option { return func(m *Mirrorer) { m.log = l } }

// WithSignatureSuffixes sets the cosign tag suffixes carried with each image (default
// ".sig", ".att" and "": tags sha256-<hex>.sig, sha256-<hex>.att and the OCI referrers
// fallback tag sha256-<hex>, under which registries without the referrers API, such as
// distribution 2.8, keep cosign v3's sigstore bundles).
func WithSignatureSuffixes(s ...string) Option { return func(m *Mirrorer) { m.sigSuffix = s } }

// New returns a Mirrorer.
func New(opts ...Option) *Mirrorer {
	m := &Mirrorer{
		jobs:      8,
		keychain:  authn.NewMultiKeychain(),
		backoff:   DefaultBackoff(),
		journalTT: 6 * 24 * time.Hour,
		log:       slog.New(slog.DiscardHandler),
		sigSuffix: []string{".sig", ".att", ""},
		idle:      time.Minute,
	}
	for _, o := range opts {
		o(m)
	}
	if m.base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		// Blobs stream straight from one connection to another; bigger buffers mean
		// fewer syscalls per MiB than the 4 KiB default. 64 KiB, not more: every idle
		// connection keeps both, and a warm rerun opens many (RSS goal < 64 MiB).
		t.WriteBufferSize, t.ReadBufferSize = 64<<10, 64<<10
		m.base = t
	}
	return m
}

// Report is the result of a run; its JSON is the contract of `imgpipe mirror -o json`.
type Report struct {
	DryRun    bool             `json:"dry_run"`
	Endpoints []EndpointReport `json:"endpoints"`
	Images    []ImageReport    `json:"images"`
	Totals    Totals           `json:"totals"`
}

// EndpointReport is one local registry and the mode it was filled in.
type EndpointReport struct {
	Upstream string `json:"upstream"`
	Host     string `json:"host"`
	Mode     Mode   `json:"mode"`
	Images   int    `json:"images"`
	Note     string `json:"note,omitempty"`
	Error    string `json:"error,omitempty"`
}

// ImageReport is the outcome for one image.
type ImageReport struct {
	Role   string `json:"role"`
	Ref    string `json:"ref"`
	Source string `json:"source"`
	// Digest is the digest mirrored: the lock's, or the upstream's when the lock had none.
	Digest string `json:"digest,omitempty"`
	// DigestSource is "lock" or "upstream".
	DigestSource string `json:"digest_source,omitempty"`
	Mirror       string `json:"mirror,omitempty"`
	Endpoint     string `json:"endpoint,omitempty"`
	Mode         Mode   `json:"mode,omitempty"`
	Status       string `json:"status"`
	// Signatures are the cosign tags found upstream and carried along.
	Signatures []string `json:"signatures"`
	Manifests  int64    `json:"manifests"`
	Blobs      int64    `json:"blobs"`
	BlobsMoved int64    `json:"blobs_moved"`
	BytesMoved int64    `json:"bytes_moved"`
	Verified   bool     `json:"verified"`
	Notes      []string `json:"notes,omitempty"`
	Error      string   `json:"error,omitempty"`

	// tally is shared by the goroutines working on the image's tree.
	tally *tally
	// current is set when this run already saw the mirror resolve the tag and every
	// signature tag to the expected digests; verification needs no second look.
	current bool
	// trees are, in warm mode, the image's tree and its signature tags' (nil: not found).
	trees []*tree
}

type tally struct {
	manifests, blobs, moved, bytes atomic.Int64
}

// note is only called from the image's own goroutine.
func (ir *ImageReport) note(format string, args ...any) {
	ir.Notes = append(ir.Notes, fmt.Sprintf(format, args...))
}

// Totals sum up a run.
type Totals struct {
	Images       int     `json:"images"`
	Copied       int     `json:"copied"`
	Present      int     `json:"present"`
	Warmed       int     `json:"warmed"`
	Planned      int     `json:"planned"`
	Unmirrored   int     `json:"unmirrored"`
	Failed       int     `json:"failed"`
	Verified     int     `json:"verified"`
	BlobsMoved   int64   `json:"blobs_moved"`
	BlobsSkipped int64   `json:"blobs_skipped"`
	BlobsMounted int64   `json:"blobs_mounted"`
	BytesMoved   int64   `json:"bytes_moved"`
	Requests     int64   `json:"requests"`
	BytesRead    int64   `json:"bytes_read"`
	Retries      int64   `json:"retries"`
	Seconds      float64 `json:"seconds"`
	// JournalStale counts blobs the warm journal listed that the cache no longer held
	// (wiped or expired) and that were warmed again.
	JournalStale int64 `json:"journal_stale,omitempty"`
}

// run is the state of one Run.
type run struct {
	m       *Mirrorer
	c       counters
	base    http.RoundTripper
	journal *journal

	mu      sync.Mutex
	clients map[string]*regClient
	sems    map[string]chan struct{}
	blobs   map[string]*blobEntry

	blobsSkipped atomic.Int64
	blobsMounted atomic.Int64
	// confirms records, per cache host, whether it ever confirmed keeping a blob.
	confirms map[string]*atomic.Bool
	// pending are blobs warmed but not yet confirmed as kept by their cache.
	pending []warmedBlob
	// journalStale counts journal entries the cache no longer backed.
	journalStale atomic.Int64
	// noAPI lists the registries found without the OCI referrers API.
	noAPI map[string]bool
	// reach is, per upstream host, whether a warm run can ask it directly.
	reach map[string]*reachState
	// canaryMissed lists the canary blobs (host|repo|digest) a warm run found missing.
	canaryMissed map[string]bool
	// stores learns, per cache host, how fast it stores blobs, and whether dropping a
	// response and asking lets it store at all.
	stores map[string]*storeStats
}

// storeStats is what a run learned about one cache's background stores.
type storeStats struct {
	bytesPerSec float64 // smoothed
	whole       bool    // polling never confirmed a blob here: read blobs whole
}

// expectStore is how long the cache at host should take to store size bytes.
func (r *run) expectStore(host string, size int64) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	rate := 50e6 // a first guess, on the slow side: an early poll costs the cache an upstream fetch
	if st := r.stores[host]; st != nil && st.bytesPerSec > 0 {
		rate = st.bytesPerSec
	}
	return time.Duration(float64(size) / rate * float64(time.Second))
}

func (r *run) noteStore(host string, size int64, took time.Duration) {
	if size < 1<<20 || took <= 0 {
		return // small blobs time the poll, not the store
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.storeStat(host)
	rate := float64(size) / took.Seconds()
	if st.bytesPerSec == 0 {
		st.bytesPerSec = rate
	} else {
		st.bytesPerSec = 0.7*st.bytesPerSec + 0.3*rate
	}
}

// giveUpAsking switches a cache that never confirmed a blob to whole reads.
func (r *run) giveUpAsking(host string) {
	if r.confirming(host).Load() {
		return // it confirmed before: this blob was slow, not the method wrong
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.storeStat(host).whole = true
}

func (r *run) readsWhole(host string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.storeStat(host).whole
}

func (r *run) storeStat(host string) *storeStats {
	st, ok := r.stores[host]
	if !ok {
		st = &storeStats{}
		r.stores[host] = st
	}
	return st
}

func (r *run) confirming(host string) *atomic.Bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.confirms[host]
	if !ok {
		b = &atomic.Bool{}
		r.confirms[host] = b
	}
	return b
}

// blobEntry serialises work on one digest at one registry, so a blob shared by
// several images is moved once and then mounted or skipped.
type blobEntry struct {
	mu    sync.Mutex
	repos map[string]bool // repositories known to hold the blob
	last  string          // warm: the repository it was last read through
}

// Run mirrors the placed images: each endpoint in its mode (auto is probed), then a
// verification of every image at its mirror. Unmirrored placements are reported, not
// skipped. The error wraps ErrIncomplete when any image failed; the report is returned
// in every case but a setup failure.
func (m *Mirrorer) Run(ctx context.Context, placements []Placement) (*Report, error) {
	start := time.Now()
	r := m.newRun()
	rep := &Report{DryRun: m.dryRun, Images: make([]ImageReport, len(placements))}
	epIndex := r.planEndpoints(ctx, placements, rep)
	r.mirrorAll(ctx, placements, rep, epIndex)
	r.confirmWarmed(ctx)
	if !m.dryRun {
		r.verifyAll(ctx, placements, rep)
		// What check reads instead of pulling through the caches.
		r.recordWarmed(placements, rep)
	}
	if err := r.journal.save(); err != nil {
		m.log.Warn("could not save warm journal", "path", m.journal, "err", err)
	}
	failed := r.sum(rep, start)
	if ctx.Err() != nil {
		return rep, fmt.Errorf("mirroring: %w", ctx.Err())
	}
	if len(failed) > 0 {
		return rep, fmt.Errorf("%w: %d of %d images failed: %w", ErrIncomplete, len(failed), rep.Totals.Images, errors.Join(failed...))
	}
	return rep, nil
}

// newRun sets up the state of one Run, with its journal (an unreadable one is empty).
func (m *Mirrorer) newRun() *run {
	r := &run{m: m, clients: map[string]*regClient{}, sems: map[string]chan struct{}{}, blobs: map[string]*blobEntry{},
		confirms: map[string]*atomic.Bool{}, stores: map[string]*storeStats{}, noAPI: map[string]bool{},
		reach: map[string]*reachState{}, canaryMissed: map[string]bool{}}
	r.base = &countingTransport{inner: m.base, c: &r.c, idle: m.idle}
	r.journal = newJournal("", m.journalTT, time.Now())
	if m.journal != "" {
		j, err := loadJournal(m.journal, m.journalTT, time.Now())
		if err != nil {
			m.log.Warn("ignoring unreadable warm journal", "path", m.journal, "err", err)
		}
		r.journal = j
	}
	return r
}

// planEndpoints fills each image's report from its placement and resolves each
// endpoint's mode once (auto probes with the first image's repository, except in a dry
// run). It returns the index in rep.Endpoints of each upstream|host.
func (r *run) planEndpoints(ctx context.Context, placements []Placement, rep *Report) map[string]int {
	modes := map[string]Mode{}
	epIndex := map[string]int{}
	for i, p := range placements {
		ir := &rep.Images[i]
		ir.Role, ir.Ref, ir.Source, ir.Digest, ir.Signatures = p.Role, p.Ref, p.Source, p.Digest, []string{}
		ir.tally = &tally{}
		if p.Digest != "" {
			ir.DigestSource = "lock"
		}
		if p.Unmirrored {
			ir.Status = StatusUnmirrored
			ref, _ := ParseRef(p.Ref)
			ir.Error = fmt.Sprintf("%s %s: add registries.mirrors[%q] or registries.overridePath to imgpipe.yaml", ErrNoMirror, ref.Upstream, ref.Upstream)
			continue
		}
		ir.Mirror, ir.Endpoint = p.Mirror, p.Endpoint.Host
		key := p.Endpoint.Upstream + "|" + p.Endpoint.Host
		k, ok := epIndex[key]
		if !ok {
			k = len(rep.Endpoints)
			epIndex[key] = k
			rep.Endpoints = append(rep.Endpoints, r.endpointReport(ctx, p, modes))
		}
		rep.Endpoints[k].Images++
	}
	return epIndex
}

// endpointReport is the report of p's endpoint, its auto mode probed once per host.
func (r *run) endpointReport(ctx context.Context, p Placement, modes map[string]Mode) EndpointReport {
	er := EndpointReport{Upstream: p.Endpoint.Upstream, Host: p.Endpoint.Host, Mode: p.Endpoint.Mode}
	switch {
	case p.Endpoint.Mode != ModeAuto:
	case r.m.dryRun:
		// The probe opens an upload session: a mutation a dry run must not make.
		er.Note = "auto: not probed in a dry run (the probe opens an upload, and a read through a pull-through cache fills it)"
	default:
		if mode, ok := modes[p.Endpoint.Host]; ok {
			er.Mode = mode
			return er
		}
		ref, _ := ParseRef(p.Ref)
		mode, err := r.probe(ctx, p.Endpoint, ref.at(p.Endpoint).Repository)
		if err != nil {
			er.Error = err.Error()
			return er
		}
		modes[p.Endpoint.Host] = mode
		er.Mode = mode
	}
	return er
}

// mirrorAll pushes or warms every placed image, a bounded number per endpoint at a
// time. Images fail independently: one image's error must not cancel the others.
func (r *run) mirrorAll(ctx context.Context, placements []Placement, rep *Report, epIndex map[string]int) {
	var wg sync.WaitGroup
	for i, p := range placements {
		ir := &rep.Images[i]
		if p.Unmirrored {
			continue
		}
		er := rep.Endpoints[epIndex[p.Endpoint.Upstream+"|"+p.Endpoint.Host]]
		if er.Error != "" {
			ir.Status, ir.Error = StatusFailed, "endpoint unusable: "+er.Error
			continue
		}
		ep := p.Endpoint
		ep.Mode = er.Mode
		ir.Mode = ep.Mode
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem := r.imageSem(ep)
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				ir.Status, ir.Error = StatusFailed, ctx.Err().Error()
				return
			}
			defer func() { <-sem }()
			var err error
			if ep.Mode == ModeWarm || ep.Mode == ModeAuto && r.m.dryRun {
				err = r.warmImage(ctx, p, ep, ir)
			} else {
				err = r.pushImage(ctx, p, ep, ir)
			}
			if err != nil {
				ir.Status, ir.Error = StatusFailed, err.Error()
			}
			r.emit(Event{Kind: "image", Image: p.Ref, Status: ir.Status, Digest: ir.Digest})
		}()
	}
	wg.Wait()
}

// verifyAll checks every image that did not fail at its mirror.
func (r *run) verifyAll(ctx context.Context, placements []Placement, rep *Report) {
	var wg sync.WaitGroup
	for i, p := range placements {
		ir := &rep.Images[i]
		if p.Unmirrored || ir.Status == StatusFailed {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem := r.sem("img|" + p.Endpoint.Host)
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := r.verify(ctx, p, ir); err != nil {
				ir.Status, ir.Error = StatusFailed, err.Error()
			}
		}()
	}
	wg.Wait()
}

// sum fills the per-image counts and the totals, and returns the failed images.
func (r *run) sum(rep *Report, start time.Time) []error {
	var failed []error
	t := &rep.Totals
	for i := range rep.Images {
		ir := &rep.Images[i]
		ir.Manifests, ir.Blobs = ir.tally.manifests.Load(), ir.tally.blobs.Load()
		ir.BlobsMoved, ir.BytesMoved = ir.tally.moved.Load(), ir.tally.bytes.Load()
		t.Images++
		t.BlobsMoved += ir.BlobsMoved
		t.BytesMoved += ir.BytesMoved
		if ir.Verified {
			t.Verified++
		}
		switch ir.Status {
		case StatusCopied:
			t.Copied++
		case StatusPresent:
			t.Present++
		case StatusWarmed:
			t.Warmed++
		case StatusPlanned:
			t.Planned++
		case StatusUnmirrored:
			t.Unmirrored++
		default:
			t.Failed++
			failed = append(failed, fmt.Errorf("%s: %s", ir.Ref, ir.Error))
		}
	}
	t.BlobsSkipped, t.BlobsMounted = r.blobsSkipped.Load(), r.blobsMounted.Load()
	t.Requests, t.BytesRead, t.Retries = r.c.requests.Load(), r.c.bytesIn.Load(), r.c.retries.Load()
	t.Seconds = time.Since(start).Seconds()
	t.JournalStale = r.journalStale.Load()
	return failed
}

func (r *run) emit(e Event) {
	if r.m.progress != nil {
		r.m.progress(e)
	}
}

func (r *run) sem(key string) chan struct{} { return r.semN(key, r.m.jobs) }

func (r *run) semN(key string, n int) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sems[key]
	if !ok {
		s = make(chan struct{}, n)
		r.sems[key] = s
	}
	return s
}

// imageSem bounds the images in flight at an endpoint. Pushing, jobs images at a time
// keep the blob pool busy. Warming, an image mostly waits: on its blobs' stores, and on
// a blob it shares with other repositories, which the cache can only store for one
// repository at a time (see warmBlob). Holding jobs images in that queue starved the
// blob pool of other images' work, so warm lets many more images in; the blob pool
// (jobs per cache) is what bounds the load on the cache.
func (r *run) imageSem(ep Endpoint) chan struct{} {
	if ep.Mode == ModeWarm {
		return r.semN("warmimg|"+ep.Host, 16*r.m.jobs)
	}
	return r.sem("img|" + ep.Host)
}

func (r *run) blob(key string) *blobEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.blobs[key]
	if !ok {
		e = &blobEntry{repos: map[string]bool{}}
		r.blobs[key] = e
	}
	return e
}

// client returns the shared client of a registry host.
func (r *run) client(reg name.Registry) (*regClient, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := reg.Scheme() + "://" + reg.RegistryStr()
	if c, ok := r.clients[key]; ok {
		return c, nil
	}
	auth, err := r.m.keychain.Resolve(reg)
	if err != nil {
		return nil, fmt.Errorf("finding credentials for %s: %w", reg.RegistryStr(), err)
	}
	c := &regClient{reg: reg, auth: auth, base: r.base, backoff: r.m.backoff, c: &r.c, rts: map[string]http.RoundTripper{}}
	r.clients[key] = c
	return c, nil
}

func (r *run) endpointClient(ep Endpoint) (*regClient, error) {
	reg, err := ep.Registry()
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", ep.Host, err)
	}
	return r.client(reg)
}

// upstreamClient returns the client of an upstream host; Docker Hub's API lives at index.docker.io.
func (r *run) upstreamClient(host string) (*regClient, error) {
	if host == DockerHub {
		host = name.DefaultRegistry
	}
	reg, err := name.NewRegistry(host)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", host, err)
	}
	return r.client(reg)
}

// probe tells a pull-through cache (refuses an upload) from a plain registry. The
// upload session it opens on a plain registry is cancelled at once.
func (r *run) probe(ctx context.Context, ep Endpoint, repo string) (Mode, error) {
	c, err := r.endpointClient(ep)
	if err != nil {
		return "", err
	}
	var loc string
	err = retry(ctx, r.m.backoff, &r.c, func() error {
		var err error
		loc, _, err = c.startUpload(ctx, repo, "", "")
		return err
	})
	if errors.Is(err, errUnsupported) {
		r.m.log.Debug("endpoint refuses uploads: warming it", "endpoint", ep.Host)
		return ModeWarm, nil
	}
	if err != nil {
		return "", fmt.Errorf("probing %s: %w", ep.Host, err)
	}
	c.cancelUpload(ctx, repo, loc)
	return ModePush, nil
}

// sigTag is cosign's tag for an artefact attached to digest.
func sigTag(digest, suffix string) string {
	return strings.Replace(digest, ":", "-", 1) + suffix
}
