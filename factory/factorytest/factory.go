package factorytest

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siderolabs/image-factory/pkg/client"
	"github.com/siderolabs/image-factory/pkg/schematic"
)

// Catalog is the data the fake serves.
type Catalog struct {
	Versions   []string                          `json:"versions"`
	Broken     []string                          `json:"broken,omitempty"`
	Extensions map[string][]client.ExtensionInfo `json:"extensions"`
	Overlays   map[string][]client.OverlayInfo   `json:"overlays,omitempty"`
}

//go:embed testdata/catalog.json
var referenceCatalog []byte

// ReferenceCatalog is built from the project's reference data (every release from
// v1.7.0 with its extension refs; see internal/gencat). Each call returns a fresh copy.
func ReferenceCatalog() Catalog {
	var c Catalog
	if err := json.Unmarshal(referenceCatalog, &c); err != nil {
		panic(fmt.Sprintf("factorytest: embedded catalog: %v", err)) // a broken embed is a build defect
	}
	return c
}

// Routes name groups of endpoints for fault injection and request logs.
const (
	RouteHealth     = "healthz"
	RouteVersions   = "versions"
	RouteExtensions = "extensions"
	RouteOverlays   = "overlays"
	RouteSchematics = "schematics"
	RouteImage      = "image"
	RouteRegistry   = "registry"
)

// Fault is one injected misbehaviour. It applies to the next Times requests of its
// route (default 1), in injection order.
type Fault struct {
	// Status answers with this code and a short body (e.g. 500, 503, 429).
	Status int
	// RetryAfter is sent as the Retry-After header with Status.
	RetryAfter string
	// Delay waits before answering (a slow server); it ends early if the client leaves.
	Delay time.Duration
	// Cut, on a successful body, writes After body bytes then drops the connection.
	Cut bool
	// Stall, on a successful body, writes After body bytes then stops sending until
	// the client gives up.
	Stall bool
	// After is the byte count for Cut and Stall.
	After int64
	// Times is how many requests this fault applies to (0 means 1).
	Times int
}

// Options shape the fake.
type Options struct {
	Catalog Catalog
	// Username and Password, when set, are required as basic auth on every route.
	Username, Password string
	// Owner turns on Enterprise behaviour: created schematics get this owner, so
	// their IDs differ from the locally computed ones.
	Owner string
	// LegacyCreate answers POST /schematics with {"id"} only, like factories before 2026-05.
	LegacyCreate bool
	// IgnoreBroken makes ?broken=true return every version, like factories without the feature.
	IgnoreBroken bool
	// NoHealthz answers /healthz with 404.
	NoHealthz bool
	// ImageSize is the size of every /image artifact (default 1 MiB + 123 bytes).
	ImageSize int64
	// NoRange ignores Range headers (always 200 with the whole body).
	NoRange bool
	// RedirectImages answers /image/... with 302 to /cdn/image/..., as the public
	// factory does with its CDN; the bytes come from the second URL.
	RedirectImages bool
	// BuildDelay is how long the first manifest request of an installer takes (on-demand build).
	BuildDelay time.Duration
	// Content, when set and returning non-nil, supplies an /image artifact's bytes in
	// place of the generated stream, for consumers that parse what they download (a
	// .raw.zst disk image must decompress). Such bytes ignore ImageSize and Rebuild.
	Content func(id, version, path string) []byte
}

// Request is one request the fake received.
type Request struct {
	Route  string
	Method string
	Path   string
	Range  string
	Status int
	// Bytes is how many body bytes were written.
	Bytes int64
}

// Factory is a running fake Image Factory.
type Factory struct {
	srv  *httptest.Server
	opts Options

	mu         sync.Mutex
	faults     map[string][]Fault
	requests   []Request
	schematics map[string][]byte
	built      map[string]bool
	generation int
}

// New starts a fake factory on 127.0.0.1 and stops it when tb ends.
func New(tb testing.TB, opts Options) *Factory {
	tb.Helper()
	f := Start(opts)
	tb.Cleanup(f.Close)
	return f
}

// Start starts a fake factory on 127.0.0.1 (for benchmarks and programs); call Close.
func Start(opts Options) *Factory {
	if opts.ImageSize <= 0 {
		opts.ImageSize = 1<<20 + 123
	}
	f := &Factory{opts: opts, faults: map[string][]Fault{}, schematics: map[string][]byte{}, built: map[string]bool{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("factorytest: listening on loopback: %v", err))
	}
	f.srv = &httptest.Server{Listener: l, Config: &http.Server{Handler: f}}
	f.srv.Start()
	return f
}

// SetCatalog replaces what the fake serves from now on, as a real factory's
// listing changes between days (a new patch release, a release marked broken).
func (f *Factory) SetCatalog(c Catalog) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opts.Catalog = c
}

func (f *Factory) catalog() Catalog {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opts.Catalog
}

// URL is the factory's base URL (http://127.0.0.1:port).
func (f *Factory) URL() string { return f.srv.URL }

// Host is the factory's host:port, which is also its registry host.
func (f *Factory) Host() string { return strings.TrimPrefix(f.srv.URL, "http://") }

// Close stops the server.
func (f *Factory) Close() {
	f.srv.CloseClientConnections()
	f.srv.Close()
}

// Inject queues faults for a route.
func (f *Factory) Inject(route string, faults ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[route] = append(f.faults[route], faults...)
}

// Requests returns the requests received so far.
func (f *Factory) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// RequestsFor returns the requests received on one route.
func (f *Factory) RequestsFor(route string) []Request {
	var out []Request
	for _, r := range f.Requests() {
		if r.Route == route {
			out = append(out, r)
		}
	}
	return out
}

// BytesServed sums the body bytes written on a route.
func (f *Factory) BytesServed(route string) int64 {
	var n int64
	for _, r := range f.RequestsFor(route) {
		n += r.Bytes
	}
	return n
}

// AddSchematic stores a schematic as if it had been posted, returning its ID.
func (f *Factory) AddSchematic(yamlText string) (string, error) {
	s, err := schematic.Unmarshal([]byte(yamlText))
	if err != nil {
		return "", err
	}
	return f.store(s)
}

// HasSchematic reports whether the fake knows a schematic ID.
func (f *Factory) HasSchematic(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.schematics[id]
	return ok
}

// Rebuild changes every image's bytes and validators, as if the factory had
// rebuilt its artifacts.
func (f *Factory) Rebuild() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.generation++
}

// Builds lists the installer references whose on-demand build has happened.
func (f *Factory) Builds() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.built {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Image returns the bytes the fake serves for /image/<id>/<version>/<path>, as a
// reader, and its size.
func (f *Factory) Image(id, version, path string) (io.ReadSeeker, int64) {
	if f.opts.Content != nil {
		if b := f.opts.Content(id, version, path); b != nil {
			return bytes.NewReader(b), int64(len(b))
		}
	}
	f.mu.Lock()
	gen := f.generation
	f.mu.Unlock()
	c := newContent(fmt.Sprintf("%d/%s/%s/%s", gen, id, version, path), f.opts.ImageSize)
	return c, f.opts.ImageSize
}

// ImageSHA256 is the "sha256:<hex>" of what Image serves.
func (f *Factory) ImageSHA256(id, version, path string) string {
	r, _ := f.Image(id, version, path)
	h := sha256.New()
	_, _ = io.Copy(h, r)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func (f *Factory) store(s *schematic.Schematic) (string, error) {
	if f.opts.Owner != "" {
		s.Owner = f.opts.Owner
	}
	if err := s.Validate(f.opts.Owner != ""); err != nil {
		return "", err
	}
	id, err := s.ID()
	if err != nil {
		return "", err
	}
	data, err := s.Marshal()
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	f.schematics[id] = data
	f.mu.Unlock()
	return id, nil
}

// takeFault pops the next fault for route, if any.
func (f *Factory) takeFault(route string) (Fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.faults[route]
	if len(q) == 0 {
		return Fault{}, false
	}
	ft := q[0]
	if ft.Times <= 1 {
		f.faults[route] = q[1:]
	} else {
		q[0].Times--
	}
	return ft, true
}

func (f *Factory) record(r Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r)
}

// recorder counts status and body bytes for the request log.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	fault  Fault
	faulty bool
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.faulty && (w.fault.Cut || w.fault.Stall) && w.status < 300 {
		left := w.fault.After - w.bytes
		if int64(len(p)) > left {
			n, _ := w.ResponseWriter.Write(p[:max(left, 0)])
			w.bytes += int64(n)
			if f, ok := w.ResponseWriter.(http.Flusher); ok {
				f.Flush()
			}
			if w.fault.Stall {
				return n, errStalledByFault
			}
			// Drop the connection without finishing the body.
			panic(http.ErrAbortHandler)
		}
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

var errStalledByFault = errors.New("factorytest: stalled")

// ServeHTTP implements http.Handler.
func (f *Factory) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route := routeOf(r.URL.Path)
	rec := &recorder{ResponseWriter: w}
	defer func() {
		f.record(Request{Route: route, Method: r.Method, Path: r.URL.RequestURI(), Range: r.Header.Get("Range"), Status: rec.status, Bytes: rec.bytes})
		if rec.faulty && rec.fault.Stall && rec.status < 300 {
			<-r.Context().Done() // keep the connection open and silent
		}
	}()
	if f.opts.Username != "" || f.opts.Password != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != f.opts.Username || p != f.opts.Password {
			rec.Header().Set("WWW-Authenticate", `Basic realm="image-factory"`)
			http.Error(rec, "unauthorized", http.StatusUnauthorized)
			return
		}
	}
	if ft, ok := f.takeFault(route); ok {
		if ft.Delay > 0 {
			// Read the body first: only then does the server notice a client that
			// hangs up (and cancel r.Context()), so a slow answer never outlives it.
			body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
			r.Body = io.NopCloser(bytes.NewReader(body))
			t := time.NewTimer(ft.Delay)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if ft.Status != 0 {
			if ft.RetryAfter != "" {
				rec.Header().Set("Retry-After", ft.RetryAfter)
			}
			http.Error(rec, http.StatusText(ft.Status), ft.Status)
			return
		}
		rec.fault, rec.faulty = ft, true
	}
	switch route {
	case RouteHealth:
		if f.opts.NoHealthz {
			http.NotFound(rec, r)
			return
		}
		fmt.Fprintln(rec, "ok")
	case RouteVersions:
		f.serveVersions(rec, r)
	case RouteExtensions:
		f.serveCatalog(rec, r, "extensions")
	case RouteOverlays:
		f.serveCatalog(rec, r, "overlays")
	case RouteSchematics:
		f.serveSchematics(rec, r)
	case RouteImage:
		f.serveImage(rec, r)
	case RouteRegistry:
		f.serveRegistry(rec, r)
	default:
		http.NotFound(rec, r)
	}
}

func routeOf(p string) string {
	switch {
	case p == "/healthz":
		return RouteHealth
	case p == "/versions":
		return RouteVersions
	case strings.HasPrefix(p, "/version/") && strings.HasSuffix(p, "/extensions/official"):
		return RouteExtensions
	case strings.HasPrefix(p, "/version/") && strings.HasSuffix(p, "/overlays/official"):
		return RouteOverlays
	case p == "/schematics" || strings.HasPrefix(p, "/schematics/"):
		return RouteSchematics
	case strings.HasPrefix(p, "/image/"), strings.HasPrefix(p, "/cdn/image/"):
		return RouteImage
	case p == "/v2" || strings.HasPrefix(p, "/v2/"):
		return RouteRegistry
	}
	return "other"
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *Factory) serveVersions(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Query().Get("broken") == "true" && !f.opts.IgnoreBroken {
		writeJSON(w, http.StatusOK, nonNil(f.catalog().Broken))
		return
	}
	writeJSON(w, http.StatusOK, nonNil(f.catalog().Versions))
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (f *Factory) serveCatalog(w http.ResponseWriter, r *http.Request, kind string) {
	v := strings.Split(strings.TrimPrefix(r.URL.Path, "/version/"), "/")[0]
	if !slices.Contains(f.catalog().Versions, v) {
		http.Error(w, fmt.Sprintf("version %s is not available", v), http.StatusNotFound)
		return
	}
	if kind == "extensions" {
		writeJSON(w, http.StatusOK, nonNil(f.catalog().Extensions[v]))
		return
	}
	writeJSON(w, http.StatusOK, nonNil(f.catalog().Overlays[v]))
}

func (f *Factory) serveSchematics(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/schematics":
		data, err := io.ReadAll(io.LimitReader(r.Body, 2<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s, err := schematic.Unmarshal(data)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id, err := f.store(s)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp := map[string]string{"id": id}
		if !f.opts.LegacyCreate {
			f.mu.Lock()
			resp["schematic"] = string(f.schematics[id])
			f.mu.Unlock()
		}
		writeJSON(w, http.StatusCreated, resp)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/schematics/"):
		id := strings.TrimPrefix(r.URL.Path, "/schematics/")
		f.mu.Lock()
		data, ok := f.schematics[id]
		f.mu.Unlock()
		if !ok {
			http.Error(w, "schematic not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(data)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// serveImage answers /image/<id>/<version>/<path> for known schematics and versions.
func (f *Factory) serveImage(w http.ResponseWriter, r *http.Request) {
	if f.opts.RedirectImages && strings.HasPrefix(r.URL.Path, "/image/") {
		http.Redirect(w, r, "/cdn"+r.URL.Path, http.StatusFound)
		return
	}
	parts := strings.SplitN(strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/cdn"), "/image/"), "/", 3)
	if len(parts) != 3 || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	id, version, path := parts[0], parts[1], parts[2]
	if !f.HasSchematic(id) {
		http.Error(w, "schematic not found", http.StatusNotFound)
		return
	}
	if !slices.Contains(f.catalog().Versions, version) {
		http.Error(w, "version not found", http.StatusNotFound)
		return
	}
	if strings.HasSuffix(path, ".sha256") || strings.HasSuffix(path, ".sha512") || strings.HasSuffix(path, ".sigstore.json") {
		http.Error(w, "enterprise feature", http.StatusPaymentRequired)
		return
	}
	f.mu.Lock()
	gen := f.generation
	f.mu.Unlock()
	content, size := f.Image(id, version, path)
	tag := sha256.Sum256(fmt.Appendf(nil, "%d/%s/%s/%s", gen, id, version, path))
	w.Header().Set("ETag", `"`+hex.EncodeToString(tag[:8])+`"`)
	w.Header().Set("Content-Type", "application/octet-stream")
	if f.opts.NoRange {
		r.Header.Del("Range")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = io.Copy(w, content)
		return
	}
	modTime := time.Date(2026, 1, 1, 0, 0, gen, 0, time.UTC)
	http.ServeContent(w, r, "", modTime, content)
}

// content is a deterministic pseudo-random byte stream: a 1 MiB block derived
// from the seed, with each MiB's first 8 bytes replaced by its index, so every
// MiB differs and generating it costs a memcpy.
type content struct {
	block []byte
	size  int64
	off   int64
}

const blockSize = 1 << 20

func newContent(seed string, size int64) *content {
	block := make([]byte, blockSize)
	h := sha256.Sum256([]byte(seed))
	for i := 0; i < blockSize; i += len(h) {
		copy(block[i:], h[:])
		h = sha256.Sum256(h[:])
	}
	return &content{block: block, size: size}
}

func (c *content) Read(p []byte) (int, error) {
	if c.off >= c.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), c.size-c.off)]
	n := 0
	for n < len(p) {
		pos := c.off + int64(n)
		in := pos % blockSize
		m := copy(p[n:], c.block[in:])
		if in < 8 {
			var idx [8]byte
			binary.BigEndian.PutUint64(idx[:], uint64(pos/blockSize))
			copy(p[n:n+min(m, int(8-in))], idx[in:])
		}
		n += m
	}
	c.off += int64(n)
	return n, nil
}

func (c *content) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += c.off
	case io.SeekEnd:
		offset += c.size
	default:
		return 0, errors.New("bad whence")
	}
	if offset < 0 {
		return 0, errors.New("negative position")
	}
	c.off = offset
	return offset, nil
}
