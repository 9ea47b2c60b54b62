package registrytest

import (
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
)

// Faults says what a FaultProxy does wrong, each for the first N matching requests.
type Faults struct {
	// CutBlobs cuts the connection after half the body of that many blob GETs.
	CutBlobs atomic.Int32
	// Throttle answers that many requests with 429 and Retry-After: 0.
	Throttle atomic.Int32
	// Unavailable answers that many requests with 503.
	Unavailable atomic.Int32

	// Injected counts the faults actually served.
	Injected atomic.Int32
	// Requests counts every request seen.
	Requests atomic.Int64
}

// FaultProxy returns a handler that forwards to upstream (a registry base URL) and
// injects f's faults. Requests for /v2/ itself are never faulted: distribution's proxy
// mode pings its upstream at startup and exits when that fails.
func FaultProxy(upstream string, f *Faults) (http.Handler, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = nil
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.Requests.Add(1)
		if r.URL.Path != "/v2/" && r.URL.Path != "/v2" {
			if take(&f.Throttle) {
				f.Injected.Add(1)
				w.Header().Set("Retry-After", "0")
				http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`, http.StatusTooManyRequests)
				return
			}
			if take(&f.Unavailable) {
				f.Injected.Add(1)
				http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}`, http.StatusServiceUnavailable)
				return
			}
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") && take(&f.CutBlobs) {
				f.Injected.Add(1)
				rp.ServeHTTP(&cutWriter{ResponseWriter: w}, r)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}), nil
}

func take(n *atomic.Int32) bool {
	for {
		v := n.Load()
		if v <= 0 {
			return false
		}
		if n.CompareAndSwap(v, v-1) {
			return true
		}
	}
}

// cutWriter passes through half the declared body, then aborts the connection.
type cutWriter struct {
	http.ResponseWriter
	limit, written int64
	started        bool
}

func (c *cutWriter) WriteHeader(code int) {
	if !c.started {
		c.started = true
		c.limit = -1
		if cl := c.Header().Get("Content-Length"); cl != "" && code == http.StatusOK {
			var n int64
			for _, ch := range cl {
				n = n*10 + int64(ch-'0')
			}
			c.limit = n / 2
		}
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if !c.started {
		c.WriteHeader(http.StatusOK)
	}
	if c.limit >= 0 && c.written+int64(len(p)) > c.limit {
		n, _ := c.ResponseWriter.Write(p[:c.limit-c.written])
		c.written += int64(n)
		if fl, ok := c.ResponseWriter.(http.Flusher); ok {
			fl.Flush()
		}
		// Abort: the server closes the connection without finishing the body.
		panic(http.ErrAbortHandler)
	}
	n, err := c.ResponseWriter.Write(p)
	c.written += int64(n)
	return n, err
}

var _ io.Writer = (*cutWriter)(nil)
