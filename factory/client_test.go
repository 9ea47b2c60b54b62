package factory_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/factory/factorytest"
)

// fastRetries keeps fault tests quick; Retry-After values still apply as sent.
var fastRetries = factory.RetryPolicy{Attempts: 4, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond, MaxRetryAfter: 5 * time.Second}

func newClient(t *testing.T, f *factorytest.Factory, opts ...factory.Option) *factory.Client {
	t.Helper()
	opts = append([]factory.Option{factory.WithRetryPolicy(fastRetries), factory.WithTimeout(2 * time.Second)}, opts...)
	c, err := factory.New(f.URL(), opts...)
	if err != nil {
		t.Fatalf("factory.New(%q) error = %v", f.URL(), err)
	}
	return c
}

func TestNewRejectsBadURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"factory.talos.dev", "ftp://factory.talos.dev", "https://user:pw@factory.talos.dev", "://"} {
		if _, err := factory.New(u); err == nil {
			t.Errorf("factory.New(%q) error = nil; want an error", u)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("factory.New(%q) error %q leaks the password", u, err)
		}
	}
}

func TestCatalogCallsSurviveFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		route  string
		faults []factorytest.Fault
		call   func(*testing.T, *factory.Client)
	}{
		{name: "versions after 500s", route: factorytest.RouteVersions,
			faults: []factorytest.Fault{{Status: 500, Times: 2}},
			call: func(t *testing.T, c *factory.Client) {
				v, err := c.Versions(t.Context())
				if err != nil || !slices.Contains(v, "v1.9.5") {
					t.Errorf("Versions() = %d versions, %v; want v1.9.5 listed", len(v), err)
				}
			}},
		{name: "extensions after 429 with Retry-After", route: factorytest.RouteExtensions,
			faults: []factorytest.Fault{{Status: 429, RetryAfter: "1"}},
			call: func(t *testing.T, c *factory.Client) {
				start := time.Now()
				ext, err := c.Extensions(t.Context(), "v1.11.2")
				if err != nil {
					t.Fatalf("Extensions(v1.11.2) error = %v", err)
				}
				if waited := time.Since(start); waited < time.Second {
					t.Errorf("Extensions(v1.11.2) retried after %v; want >= Retry-After 1s", waited)
				}
				i := slices.IndexFunc(ext, func(e factory.ExtensionInfo) bool { return e.Name == "siderolabs/qemu-guest-agent" })
				if i < 0 || ext[i].Digest != "sha256:9720300de00544eca155bc19369dfd7789d39a0e23d72837a7188f199e13dc6c" {
					t.Errorf("Extensions(v1.11.2) qemu-guest-agent = %+v; want the reference digest", ext)
				}
			}},
		{name: "versions after a slow answer", route: factorytest.RouteVersions,
			faults: []factorytest.Fault{{Delay: 10 * time.Second}},
			call: func(t *testing.T, c *factory.Client) {
				if _, err := c.Versions(t.Context()); err != nil {
					t.Errorf("Versions() after slow answer error = %v; want success on retry", err)
				}
			}},
		{name: "extensions after a connection cut mid-body", route: factorytest.RouteExtensions,
			faults: []factorytest.Fault{{Cut: true, After: 40}},
			call: func(t *testing.T, c *factory.Client) {
				ext, err := c.Extensions(t.Context(), "v1.9.5")
				if err != nil || len(ext) == 0 {
					t.Errorf("Extensions(v1.9.5) after cut = %d, %v; want the catalog", len(ext), err)
				}
			}},
		{name: "health after 503", route: factorytest.RouteHealth,
			faults: []factorytest.Fault{{Status: 503}},
			call: func(t *testing.T, c *factory.Client) {
				if err := c.Health(t.Context()); err != nil {
					t.Errorf("Health() error = %v; want nil after retry", err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := factorytest.New(t, factorytest.Options{Catalog: factorytest.ReferenceCatalog()})
			f.Inject(tt.route, tt.faults...)
			c := newClient(t, f, factory.WithTimeout(300*time.Millisecond))
			tt.call(t, c)
			want := 1
			for _, ft := range tt.faults {
				want += max(ft.Times, 1)
			}
			if got := len(f.RequestsFor(tt.route)); got != want {
				t.Errorf("requests on %s = %d; want %d", tt.route, got, want)
			}
		})
	}
}

func TestPersistentFailureIsReported(t *testing.T) {
	t.Parallel()
	f := factorytest.New(t, factorytest.Options{Catalog: factorytest.ReferenceCatalog()})
	f.Inject(factorytest.RouteVersions, factorytest.Fault{Status: 503, Times: 100})
	c := newClient(t, f)
	_, err := c.Versions(t.Context())
	var he *factory.HTTPError
	if !errors.As(err, &he) || he.Code != http.StatusServiceUnavailable {
		t.Fatalf("Versions() error = %v; want *HTTPError 503", err)
	}
	if got := len(f.RequestsFor(factorytest.RouteVersions)); got != fastRetries.Attempts {
		t.Errorf("requests = %d; want %d (bounded)", got, fastRetries.Attempts)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    factorytest.Options
		wantErr bool
	}{
		{name: "healthy", opts: factorytest.Options{}},
		{name: "no healthz", opts: factorytest.Options{NoHealthz: true}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := factorytest.New(t, tt.opts)
			err := newClient(t, f).Health(t.Context())
			if (err != nil) != tt.wantErr {
				t.Errorf("Health() error = %v; want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestBrokenVersions(t *testing.T) {
	t.Parallel()
	cat := factorytest.ReferenceCatalog()
	cat.Broken = []string{"v1.10.1"}
	tests := []struct {
		name      string
		opts      factorytest.Options
		want      []string
		wantUnsup bool
	}{
		{name: "supported", opts: factorytest.Options{Catalog: cat}, want: []string{"v1.10.1"}},
		{name: "ignored by an old factory", opts: factorytest.Options{Catalog: cat, IgnoreBroken: true}, wantUnsup: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := factorytest.New(t, tt.opts)
			c := newClient(t, f)
			all, err := c.Versions(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.BrokenVersions(t.Context(), all)
			if errors.Is(err, factory.ErrUnsupported) != tt.wantUnsup {
				t.Fatalf("BrokenVersions() error = %v; want ErrUnsupported %v", err, tt.wantUnsup)
			}
			if !tt.wantUnsup && !slices.Equal(got, tt.want) {
				t.Errorf("BrokenVersions() = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	const user, pass = "ci", "s3cret-value"
	f := factorytest.New(t, factorytest.Options{Catalog: factorytest.ReferenceCatalog(), Username: user, Password: pass})

	if _, err := newClient(t, f, factory.WithBasicAuth(user, pass)).Versions(t.Context()); err != nil {
		t.Errorf("Versions() with credentials error = %v; want nil", err)
	}
	if err := newClient(t, f, factory.WithBasicAuth(user, pass)).Health(t.Context()); err != nil {
		t.Errorf("Health() with credentials error = %v; want nil", err)
	}
	_, err := newClient(t, f, factory.WithBasicAuth(user, "wrong")).Versions(t.Context())
	var he *factory.HTTPError
	if !errors.As(err, &he) || he.Code != http.StatusUnauthorized {
		t.Errorf("Versions() with a wrong password error = %v; want HTTP 401", err)
	}
	if err != nil && strings.Contains(err.Error(), "wrong") {
		t.Errorf("error %q leaks the password", err)
	}
}
