package factory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/siderolabs/image-factory/pkg/client"
)

// DefaultURL is the public Image Factory.
const DefaultURL = "https://factory.talos.dev"

// DefaultTimeout bounds one API request attempt.
const DefaultTimeout = 30 * time.Second

// apiBodyLimit caps buffered API answers; the largest real one (an extension catalog) is tens of KiB.
const apiBodyLimit = 16 << 20

// ExtensionInfo is one entry of /version/<v>/extensions/official.
type ExtensionInfo = client.ExtensionInfo

// OverlayInfo is one entry of /version/<v>/overlays/official.
type OverlayInfo = client.OverlayInfo

// HTTPError is the factory's answer to a failed request (from pkg/client).
type HTTPError = client.HTTPError

// Client talks to one Image Factory. It is safe for concurrent use.
type Client struct {
	base     *url.URL
	api      *client.Client
	http     *http.Client // API-shaped requests outside pkg/client (healthz)
	dl       *http.Client // streaming downloads
	user     string
	pass     string
	timeout  time.Duration
	registry string
	log      *slog.Logger
	policy   RetryPolicy
	rt       http.RoundTripper
}

type options struct {
	user, pass string
	timeout    time.Duration
	policy     RetryPolicy
	log        *slog.Logger
	rt         http.RoundTripper
	registry   string
}

// Option configures a Client.
type Option func(*options)

// WithBasicAuth authenticates to a self-hosted factory. The credentials are sent
// only to the factory's own host and never appear in errors or logs.
func WithBasicAuth(username, password string) Option {
	return func(o *options) { o.user, o.pass = username, password }
}

// WithTimeout bounds each API attempt and, for downloads, the wait for response
// headers and any stall between body reads (default DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithRetryPolicy replaces DefaultRetryPolicy.
func WithRetryPolicy(p RetryPolicy) Option { return func(o *options) { o.policy = p } }

// WithLogger receives debug lines about retries and downloads.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRoundTripper replaces the underlying transport (default: a clone of
// http.DefaultTransport with compression off, so bytes are hashed as served).
func WithRoundTripper(rt http.RoundTripper) Option { return func(o *options) { o.rt = rt } }

// WithRegistry sets the factory registry host used for installer references
// (default: the factory URL's host).
func WithRegistry(host string) Option { return func(o *options) { o.registry = host } }

// New returns a client for the factory at baseURL (e.g. https://factory.talos.dev).
func New(baseURL string, opts ...Option) (*Client, error) {
	o := options{timeout: DefaultTimeout, policy: DefaultRetryPolicy()}
	for _, opt := range opts {
		opt(&o)
	}
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("parsing factory URL %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("factory URL %q: want http(s)://host[:port]", baseURL)
	}
	if u.User != nil {
		return nil, errors.New("factory URL must not carry credentials: set IMGPIPE_FACTORY_USERNAME and IMGPIPE_FACTORY_PASSWORD")
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.rt == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DisableCompression = true
		o.rt = tr
	}
	if o.registry == "" {
		o.registry = u.Host
	}
	apiHTTP := &http.Client{Transport: &Transport{
		Base: o.rt, Policy: o.policy, AttemptTimeout: o.timeout, BufferLimit: apiBodyLimit, Log: o.log,
	}}
	copts := []client.Option{client.WithClient(*apiHTTP)}
	if o.user != "" || o.pass != "" {
		copts = append(copts, client.WithBasicAuth(o.user, o.pass))
	}
	api, err := client.New(u.String(), copts...)
	if err != nil {
		return nil, fmt.Errorf("creating factory client: %w", err)
	}
	c := &Client{
		base: u, api: api, http: apiHTTP,
		// Downloads are not buffered and have no whole-request deadline: a 1 GiB
		// ISO may take long; stalls are caught by the downloader instead.
		dl:       &http.Client{Transport: &Transport{Base: o.rt, Policy: o.policy, HeaderTimeout: o.timeout, Log: o.log}},
		user:     o.user,
		pass:     o.pass,
		timeout:  o.timeout,
		registry: o.registry,
		log:      o.log,
		policy:   o.policy,
		rt:       o.rt,
	}
	return c, nil
}

// BaseURL is the factory's URL without a trailing slash.
func (c *Client) BaseURL() string { return c.base.String() }

// Registry is the factory registry host for installer references.
func (c *Client) Registry() string { return c.registry }

// authorize adds basic auth when req goes to the factory's own host.
func (c *Client) authorize(req *http.Request) {
	if (c.user != "" || c.pass != "") && req.URL.Host == c.base.Host {
		req.SetBasicAuth(c.user, c.pass)
	}
}

// Health probes /healthz; a nil error means the factory answers and says it is healthy.
func (c *Client) Health(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.JoinPath("healthz").String(), nil)
	if err != nil {
		return fmt.Errorf("probing factory health: %w", err)
	}
	c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("probing factory health at %s: %w", c.base.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("probing factory health at %s: %w", c.base.Redacted(),
			&HTTPError{Code: resp.StatusCode, Message: strings.TrimSpace(string(body))})
	}
	return nil
}

// Versions lists the Talos versions the factory can build (pre-releases included).
func (c *Client) Versions(ctx context.Context) ([]string, error) {
	v, err := c.api.Versions(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing factory versions: %w", err)
	}
	return v, nil
}

// ErrUnsupported marks a feature this factory does not offer (older or community builds).
var ErrUnsupported = errors.New("not supported by this factory")

// BrokenVersions lists versions the factory marks broken. A factory without the
// feature either rejects ?broken=true or ignores it and returns every version; both
// are reported as ErrUnsupported so callers can degrade with a note.
func (c *Client) BrokenVersions(ctx context.Context, all []string) ([]string, error) {
	v, err := c.api.BrokenVersions(ctx)
	if err != nil {
		if client.IsHTTPErrorCode(err, http.StatusNotFound) || client.IsInvalidSchematicError(err) {
			return nil, fmt.Errorf("listing broken versions: %w", ErrUnsupported)
		}
		return nil, fmt.Errorf("listing broken versions: %w", err)
	}
	if len(all) > 0 && len(v) == len(all) && slices.Equal(v, all) {
		return nil, fmt.Errorf("listing broken versions: ?broken=true was ignored: %w", ErrUnsupported)
	}
	return v, nil
}

// Extensions lists the official extensions the factory offers for a Talos version.
func (c *Client) Extensions(ctx context.Context, talos string) ([]ExtensionInfo, error) {
	v, err := c.api.ExtensionsVersions(ctx, talos)
	if err != nil {
		return nil, fmt.Errorf("listing extensions for %s: %w", talos, err)
	}
	return v, nil
}

// Overlays lists the official overlays for a Talos version.
func (c *Client) Overlays(ctx context.Context, talos string) ([]OverlayInfo, error) {
	v, err := c.api.OverlaysVersions(ctx, talos)
	if err != nil {
		return nil, fmt.Errorf("listing overlays for %s: %w", talos, err)
	}
	return v, nil
}
