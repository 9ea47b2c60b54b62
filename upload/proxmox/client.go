package proxmox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/imgpipe/imgpipe/internal/fail"
)

// Client talks to one Proxmox VE cluster. Build it with New.
type Client struct {
	hc        *http.Client
	base      string // https://host:8006/api2/json
	tokenID   string
	auth      string // Authorization header value; never logged or formatted
	log       *slog.Logger
	poll      time.Duration
	progress  func(Progress)
	timeout   time.Duration
	stall     time.Duration
	attempts  int
	baseDelay time.Duration
	// sleep waits between retries; tests replace it to see the waits.
	sleep func(context.Context, time.Duration) error
}

// Option configures a Client.
type Option func(*Client)

// WithLogger sets the logger (default: discard). Requests are logged at debug level,
// never with the token.
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// WithPollInterval sets how often tasks are polled (default 1s).
func WithPollInterval(d time.Duration) Option { return func(c *Client) { c.poll = d } }

// WithProgress receives upload progress; it is called from the uploading goroutine.
func WithProgress(fn func(Progress)) Option { return func(c *Client) { c.progress = fn } }

// WithTimeout bounds each attempt of an API call, reading the reply included
// (default DefaultTimeout; 0 keeps the default).
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithStallTimeout ends an upload that sent no bytes for d (default
// DefaultStallTimeout; 0 keeps the default). An upload has no total timeout: a
// big ISO on a slow link may take hours and still be healthy.
func WithStallTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.stall = d
		}
	}
}

// WithRetry sets the attempts per idempotent call (first one included; default
// DefaultAttempts) and the first backoff wait, which doubles per attempt (default 500ms).
func WithRetry(attempts int, base time.Duration) Option {
	return func(c *Client) {
		if attempts > 0 {
			c.attempts = attempts
		}
		if base > 0 {
			c.baseDelay = base
		}
	}
}

// Progress reports a running upload.
type Progress struct {
	Name  string
	Node  string
	Done  int64
	Total int64
}

// New makes a client for the PVE API at baseURL (https://host:8006, with or without
// /api2/json). hc carries the TLS setup (see NewHTTPClient).
func New(baseURL string, tok Token, hc *http.Client, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		// Not quoted: a malformed URL may still hold credentials.
		return nil, fail.Usage(errors.New("proxmox.url is not a URL: want https://HOST:8006/api2/json"))
	}
	if u.User != nil {
		// Never echo the URL: it holds the credentials.
		return nil, fail.Usage(fmt.Errorf("proxmox.url %s: must not carry credentials; the token comes from %s or proxmox.tokenFile", u.Redacted(), TokenEnv))
	}
	if u.Scheme != "https" {
		return nil, fail.Usage(fmt.Errorf("proxmox.url %q: PVE speaks https only", baseURL))
	}
	if tok.IsZero() {
		return nil, fail.Usage(ErrNoToken)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(u.Path, "/api2/json") {
		u.Path += "/api2/json"
	}
	c := &Client{
		hc:        hc,
		base:      u.String(),
		tokenID:   tok.id,
		auth:      "PVEAPIToken=" + tok.id + "=" + tok.secret,
		log:       slog.New(slog.DiscardHandler),
		poll:      time.Second,
		timeout:   DefaultTimeout,
		stall:     DefaultStallTimeout,
		attempts:  DefaultAttempts,
		baseDelay: defaultBaseDelay,
		sleep:     sleepCtx,
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

func (c *Client) get(ctx context.Context, path string, v any) error {
	return c.do(ctx, http.MethodGet, path, nil, v)
}

func (c *Client) post(ctx context.Context, path string, data, v any) error {
	return c.do(ctx, http.MethodPost, path, data, v)
}

func (c *Client) del(ctx context.Context, path string, v any) error {
	return c.do(ctx, http.MethodDelete, path, nil, v)
}

// Version is the PVE release as "major.minor".
type Version struct {
	Major, Minor int
	Full         string
}

// AtLeast compares release versions.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

// Version asks PVE for its version (GET /version).
func (c *Client) Version(ctx context.Context) (Version, error) {
	var pv struct {
		Version string `json:"version"`
		Release string `json:"release"`
	}
	if err := c.get(ctx, "/version", &pv); err != nil {
		return Version{}, fmt.Errorf("getting PVE version: %w", err)
	}
	v := Version{Full: pv.Version}
	rel := pv.Release
	if rel == "" {
		rel = pv.Version
	}
	if _, err := fmt.Sscanf(rel, "%d.%d", &v.Major, &v.Minor); err != nil {
		return Version{}, fmt.Errorf("getting PVE version: cannot read release %q", rel)
	}
	return v, nil
}

// StorageInfo is what imgpipe needs to know of a storage on a node.
type StorageInfo struct {
	Type    string
	Content []string
	Shared  bool
}

// Has reports whether the storage allows a content type.
func (s StorageInfo) Has(content string) bool {
	for _, c := range s.Content {
		if c == content {
			return true
		}
	}
	return false
}

// StorageStatus reads GET /nodes/{node}/storage/{storage}/status.
func (c *Client) StorageStatus(ctx context.Context, node, storage string) (StorageInfo, error) {
	var raw struct {
		Type    string    `json:"type"`
		Content string    `json:"content"`
		Shared  intOrBool `json:"shared"`
	}
	if err := c.get(ctx, fmt.Sprintf("/nodes/%s/storage/%s/status", node, storage), &raw); err != nil {
		return StorageInfo{}, fmt.Errorf("reading storage %s on %s: %w", storage, node, err)
	}
	info := StorageInfo{Type: raw.Type, Shared: bool(raw.Shared)}
	for _, ct := range strings.Split(raw.Content, ",") {
		if ct = strings.TrimSpace(ct); ct != "" {
			info.Content = append(info.Content, ct)
		}
	}
	sort.Strings(info.Content)
	return info, nil
}

// VolumeInfo is one entry of a storage's content list.
type VolumeInfo struct {
	VolID   string `json:"volid"`
	Content string `json:"content"`
	Format  string `json:"format"`
	Size    int64  `json:"size"`
	CTime   int64  `json:"ctime"`
}

// Name is the file name part of the volid (local:iso/x.iso -> x.iso).
func (v VolumeInfo) Name() string {
	_, rest, _ := strings.Cut(v.VolID, ":")
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		return rest[i+1:]
	}
	return rest
}

// Content lists a storage's volumes of one content type (go-proxmox's GetContent
// has no filter).
func (c *Client) Content(ctx context.Context, node, storage, content string) ([]VolumeInfo, error) {
	var out []VolumeInfo
	path := fmt.Sprintf("/nodes/%s/storage/%s/content?content=%s", node, storage, url.QueryEscape(content))
	if err := c.get(ctx, path, &out); err != nil {
		return nil, fmt.Errorf("listing %s content of %s on %s: %w", content, storage, node, err)
	}
	return out, nil
}

// DeleteVolume removes a volume and waits for the task.
func (c *Client) DeleteVolume(ctx context.Context, node, storage, volid string) error {
	var upid string
	if err := c.del(ctx, fmt.Sprintf("/nodes/%s/storage/%s/content/%s", node, storage, volid), &upid); err != nil {
		return fmt.Errorf("deleting %s on %s: %w", volid, node, err)
	}
	if upid == "" {
		return nil
	}
	if _, err := c.Wait(ctx, upid); err != nil {
		return fmt.Errorf("deleting %s on %s: %w", volid, node, err)
	}
	return nil
}

// intOrBool reads PVE's 0/1 or true/false.
type intOrBool bool

func (b *intOrBool) UnmarshalJSON(d []byte) error {
	s := strings.Trim(string(d), `"`)
	*b = intOrBool(s == "1" || s == "true")
	return nil
}
