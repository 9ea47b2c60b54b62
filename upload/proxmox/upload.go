package proxmox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"sync"
	"time"
)

// UploadRequest is one file to stream to POST /nodes/{node}/storage/{storage}/upload.
type UploadRequest struct {
	Node, Storage string
	// Content is iso or import.
	Content  string
	Filename string
	// Body yields exactly Size bytes.
	Body io.Reader
	Size int64
	// Checksum and Algorithm (sha256, sha512, ...) make PVE verify the file before
	// it lands under Filename.
	Checksum, Algorithm string
}

// ErrShortBody means the source yielded fewer or more bytes than announced.
var ErrShortBody = errors.New("upload source size changed")

// ErrStalled means an upload sent no bytes for the stall timeout.
var ErrStalled = errors.New("upload stalled")

// Upload streams one file and returns the UPID of PVE's import task (not waited
// for). The body is multipart/form-data written by hand so that the fields come in
// the only order PVE accepts (content, checksum-algorithm, checksum, then the file
// part named "filename") and Content-Length is exact: PVE refuses chunked bodies.
// Memory use is constant; cancelling ctx aborts the transfer. There is no total
// timeout: the transfer ends when no byte went out for the stall timeout, and,
// once the body is sent, when PVE does not answer within the call timeout.
func (c *Client) Upload(ctx context.Context, r UploadRequest) (string, error) {
	head, tail, ctype, err := uploadForm(r)
	if err != nil {
		return "", err
	}
	src := &exactReader{r: r.Body, left: r.Size}
	var body io.Reader = src
	if c.progress != nil {
		body = &progressReader{r: src, total: r.Size, report: func(done int64) {
			c.progress(Progress{Name: r.Filename, Node: r.Node, Done: done, Total: r.Size})
		}}
	}
	where := fmt.Sprintf("uploading %s to %s on %s", r.Filename, r.Storage, r.Node)
	path := fmt.Sprintf("/nodes/%s/storage/%s/upload", r.Node, r.Storage)
	uctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wd := newWatchdog(c.stall, cancel)
	defer wd.stop()
	watched := &watchedReader{r: io.MultiReader(bytes.NewReader(head), body, bytes.NewReader(tail)), wd: wd, reply: c.timeout}
	req, err := http.NewRequestWithContext(uctx, http.MethodPost, c.base+path, watched)
	if err != nil {
		return "", fmt.Errorf("%s: %w", where, err)
	}
	req.ContentLength = int64(len(head)) + r.Size + int64(len(tail))
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("User-Agent", "imgpipe")
	c.log.Debug("upload", "node", r.Node, "storage", r.Storage, "file", r.Filename, "bytes", r.Size)
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		if src.err != nil {
			err = src.err
		}
		return "", fmt.Errorf("%s: %w", where, c.uploadErr(ctx, uctx, path, err))
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("%s: reading reply: %w", where, c.uploadErr(ctx, uctx, path, err))
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %w", where, c.statusErr(call{method: http.MethodPost, path: path}, resp, reply))
	}
	var out struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(reply, &out); err != nil || out.Data == "" {
		return "", fmt.Errorf("%s: reply has no task id", where)
	}
	c.log.Debug("uploaded", "file", r.Filename, "node", r.Node, "seconds", time.Since(start).Seconds())
	return out.Data, nil
}

// uploadForm writes the multipart parts around the file: the text fields in the
// order PVE reads them, the file part's header (head) and the closing boundary (tail).
func uploadForm(r UploadRequest) (head, tail []byte, contentType string, err error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fields := [][2]string{{"content", r.Content}}
	if r.Checksum != "" {
		fields = append(fields, [2]string{"checksum-algorithm", r.Algorithm}, [2]string{"checksum", r.Checksum})
	}
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return nil, nil, "", fmt.Errorf("building upload form: %w", err)
		}
	}
	if _, err := mw.CreateFormFile("filename", r.Filename); err != nil {
		return nil, nil, "", fmt.Errorf("building upload form: %w", err)
	}
	headLen := buf.Len()
	if err := mw.Close(); err != nil {
		return nil, nil, "", fmt.Errorf("building upload form: %w", err)
	}
	all := buf.Bytes()
	return all[:headLen], all[headLen:], mw.FormDataContentType(), nil
}

// uploadErr says which of the upload's own limits ended it, if one did.
func (c *Client) uploadErr(ctx, uctx context.Context, path string, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	switch cause := context.Cause(uctx); {
	case errors.Is(cause, ErrStalled):
		return fmt.Errorf("%w: no bytes went out for %s", ErrStalled, c.stall)
	case errors.Is(cause, errCallTimeout):
		return fmt.Errorf("POST %s: %w within %s of the last byte", path, ErrTimeout, c.timeout)
	}
	return err
}

// watchdog cancels an upload when its timer runs out: first the stall timeout,
// re-armed by every byte sent, then the call timeout for PVE's reply.
type watchdog struct {
	mu    sync.Mutex
	d     time.Duration
	cause error
	t     *time.Timer
}

func newWatchdog(d time.Duration, cancel context.CancelCauseFunc) *watchdog {
	w := &watchdog{d: d, cause: ErrStalled}
	w.t = time.AfterFunc(d, func() {
		w.mu.Lock()
		cause := w.cause
		w.mu.Unlock()
		cancel(cause)
	})
	return w
}

func (w *watchdog) kick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Reset(w.d)
}

// awaitReply switches from the stall timeout to the reply timeout.
func (w *watchdog) awaitReply(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d, w.cause = d, errCallTimeout
	w.t.Reset(d)
}

func (w *watchdog) stop() { w.t.Stop() }

// watchedReader is the request body: each read that yields bytes re-arms the
// stall timer; the end of the body starts the wait for the reply.
type watchedReader struct {
	r     io.Reader
	wd    *watchdog
	reply time.Duration
	ended bool
}

func (w *watchedReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if n > 0 {
		w.wd.kick()
	}
	if err == io.EOF && !w.ended {
		w.ended = true
		w.wd.awaitReply(w.reply)
	}
	return n, err
}

// exactReader fails the request if the source is shorter or longer than announced,
// so a file changed under us never reaches PVE as a complete upload.
type exactReader struct {
	r    io.Reader
	left int64
	err  error
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		// One probe read to notice a source that grew.
		var b [1]byte
		if n, _ := e.r.Read(b[:]); n > 0 {
			e.err = fmt.Errorf("%w: more bytes than the lock's size", ErrShortBody)
			return 0, e.err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		e.err = fmt.Errorf("%w: %d bytes missing", ErrShortBody, e.left)
		return n, e.err
	}
	if err == io.EOF {
		err = nil
	}
	if err != nil {
		e.err = err
	}
	return n, err
}

// progressReader reports progress at most every 256 MiB/100 or 1% of the file.
type progressReader struct {
	r      io.Reader
	total  int64
	done   int64
	last   int64
	report func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	step := max(p.total/100, 1<<20)
	if p.done-p.last >= step || (err == io.EOF && p.done != p.last) {
		p.last = p.done
		p.report(p.done)
	}
	return n, err
}
