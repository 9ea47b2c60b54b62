package pvetest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

type reply struct {
	code   int
	Data   json.RawMessage   `json:"data"`
	Errors map[string]string `json:"errors"`
}

func do(t *testing.T, s *Server, method, path, ctype string, body io.Reader, size int64) reply {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if size >= 0 {
		req.ContentLength = size
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Authorization", "PVEAPIToken="+s.Token())
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var r reply
	_ = json.NewDecoder(resp.Body).Decode(&r)
	r.code = resp.StatusCode
	return r
}

func form(v url.Values) (string, io.Reader, int64) {
	enc := v.Encode()
	return "application/x-www-form-urlencoded", strings.NewReader(enc), int64(len(enc))
}

func TestParameterValidation(t *testing.T) {
	t.Parallel()
	s := New()
	defer s.Close()
	s.AddVolume(Volume{Node: "pve1", Storage: "local", VolID: "local:iso/t.iso", Content: "iso", Format: "iso", Size: 1})
	good := url.Values{"vmid": {"9000"}, "name": {"talos"}, "machine": {"q35"}, "bios": {"ovmf"},
		"scsi0": {"local-lvm:10,iothread=1"}, "net0": {"virtio,bridge=vmbr0"}, "tags": {"imgpipe;talos-v1.9.5"}}
	with := func(k, v string) url.Values {
		c := url.Values{}
		for kk, vv := range good {
			c[kk] = vv
		}
		if v == "" {
			c.Del(k)
		} else {
			c.Set(k, v)
		}
		return c
	}
	tests := []struct {
		name     string
		vals     url.Values
		wantCode int
		wantErr  string // key in errors
	}{
		{"valid", good, 200, ""},
		{"missing vmid", with("vmid", ""), 400, "vmid"},
		{"unknown key", with("bogus", "1"), 400, "bogus"},
		{"enum", with("bios", "uefi"), 400, "bios"},
		{"integer range", with("vmid", "99"), 400, "vmid"},
		{"dns name", with("name", "bad_name"), 400, "name"},
		{"tag pattern", with("tags", "ok;Not Valid!"), 400, "tags"},
		{"property key", with("scsi0", "local-lvm:10,speed=9"), 400, "scsi0"},
		{"net model", with("net0", "virtio9,bridge=vmbr0"), 400, "net0"},
		{"import from iso", with("scsi0", "local-lvm:0,import-from=local:iso/t.iso"), 400, "scsi0"},
		{"serial pattern", with("serial0", "tcp"), 400, "serial0"},
		{"index out of range", with("scsi31", "local-lvm:1"), 400, "scsi31"},
	}
	for _, tt := range tests {
		ct, body, n := form(tt.vals)
		r := do(t, s, "POST", "/nodes/pve1/qemu", ct, body, n)
		if r.code != tt.wantCode {
			t.Errorf("POST qemu (%s) = %d %v; want %d", tt.name, r.code, r.Errors, tt.wantCode)
			continue
		}
		if tt.wantErr != "" {
			if _, ok := r.Errors[tt.wantErr]; !ok || len(r.Data) == 0 || string(r.Data) != "null" {
				t.Errorf("POST qemu (%s) errors %v data %s; want errors[%q] and data null", tt.name, r.Errors, r.Data, tt.wantErr)
			}
		}
		if tt.wantCode == 200 {
			var upid string
			_ = json.Unmarshal(r.Data, &upid)
			if !regexp.MustCompile(`^UPID:pve1:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:qmcreate:9000:imgpipe@pve!ci:$`).MatchString(upid) {
				t.Errorf("POST qemu (%s) = %q; want a 9-part UPID", tt.name, upid)
			}
		}
	}
	// JSON bodies are validated the same way.
	r := do(t, s, "POST", "/nodes/pve1/storage/local/download-url", "application/json",
		strings.NewReader(`{"content":"iso","filename":"a.iso","url":"ftp://x","verify-certificates":1}`), -1)
	if r.code != 400 || r.Errors["url"] == "" {
		t.Errorf("download-url with ftp URL = %d %v; want 400 on url", r.code, r.Errors)
	}
	r = do(t, s, "POST", "/nodes/pve1/storage/local/download-url", "application/json",
		strings.NewReader(`{"content":"iso","filename":"a.iso","url":"https://x/a.iso","checksum":"ab"}`), -1)
	if r.code != 400 || r.Errors["checksum"] == "" {
		t.Errorf("download-url with checksum but no algorithm = %d %v; want 400 on checksum", r.code, r.Errors)
	}
}

// multipartBody builds an upload body with fields in the given order.
func multipartBody(fields [][2]string, fileField, fileName string, data []byte) (string, []byte) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, f := range fields {
		_ = mw.WriteField(f[0], f[1])
	}
	fw, _ := mw.CreateFormFile(fileField, fileName)
	fw.Write(data)
	mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

func TestUploadParsing(t *testing.T) {
	t.Parallel()
	data := []byte("iso bytes")
	sum := "b9a8e1cb3a6c2c0e6a47b3cfbcfd4cd8c2b2b1b6c0b0b69c6d4d8a0fca4c2f7a"
	tests := []struct {
		name      string
		fields    [][2]string
		fileField string
		fileName  string
		chunked   bool
		wantCode  int
	}{
		{"pve order", [][2]string{{"content", "iso"}, {"checksum-algorithm", "sha256"}, {"checksum", sum}}, "filename", "a.iso", false, 200},
		{"no checksum", [][2]string{{"content", "iso"}}, "filename", "a.iso", false, 200},
		{"checksum before algorithm", [][2]string{{"content", "iso"}, {"checksum", sum}, {"checksum-algorithm", "sha256"}}, "filename", "a.iso", false, 500},
		{"content last", [][2]string{{"checksum-algorithm", "sha256"}, {"checksum", sum}, {"content", "iso"}}, "filename", "a.iso", false, 500},
		{"file part misnamed", [][2]string{{"content", "iso"}}, "file", "a.iso", false, 500},
		{"wrong extension", [][2]string{{"content", "iso"}}, "filename", "a.qcow2", false, 400},
		{"import raw", [][2]string{{"content", "import"}}, "filename", "a.raw", false, 200},
		{"chunked", [][2]string{{"content", "iso"}}, "filename", "a.iso", true, 411},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := New()
			defer s.Close()
			ct, body := multipartBody(tt.fields, tt.fileField, tt.fileName, data)
			size := int64(len(body))
			var rd io.Reader = bytes.NewReader(body)
			if tt.chunked {
				size, rd = -1, io.MultiReader(rd) // hides the length: the client sends it chunked
			}
			r := do(t, s, "POST", "/nodes/pve1/storage/local/upload", ct, rd, size)
			if r.code != tt.wantCode {
				t.Errorf("upload(%s) = %d %s %v; want %d", tt.name, r.code, r.Data, r.Errors, tt.wantCode)
			}
		})
	}
}

func TestTasksAndFaults(t *testing.T) {
	t.Parallel()
	s := New(WithTaskPolls(1))
	defer s.Close()
	upload := func() string {
		ct, body := multipartBody([][2]string{{"content", "iso"}}, "filename", "a.iso", []byte("x"))
		r := do(t, s, "POST", "/nodes/pve1/storage/local/upload", ct, bytes.NewReader(body), int64(len(body)))
		var upid string
		_ = json.Unmarshal(r.Data, &upid)
		return upid
	}
	status := func(upid string) map[string]any {
		r := do(t, s, "GET", "/nodes/pve1/tasks/"+url.PathEscape(upid)+"/status", "", nil, -1)
		var st map[string]any
		_ = json.Unmarshal(r.Data, &st)
		return st
	}
	tests := []struct {
		fault    *Fault
		wantExit string
		wantVols int
	}{
		{nil, "OK", 1},
		{&Fault{Kind: FaultTaskWarn, Path: "/upload"}, "WARNINGS: 1", 1},
		{&Fault{Kind: FaultTaskFail, Path: "/upload", Message: "disk full"}, "disk full", 0},
	}
	for i, tt := range tests {
		for _, v := range s.Volumes() {
			s.mu.Lock()
			delete(s.volumes, v.Node+"|"+v.VolID)
			s.mu.Unlock()
		}
		if tt.fault != nil {
			s.Inject(*tt.fault)
		}
		upid := upload()
		if st := status(upid); st["status"] != "running" {
			t.Errorf("case %d: first status %v; want running", i, st["status"])
		}
		st := status(upid)
		if st["status"] != "stopped" || st["exitstatus"] != tt.wantExit {
			t.Errorf("case %d: status %v/%v; want stopped/%s", i, st["status"], st["exitstatus"], tt.wantExit)
		}
		if n := len(s.Volumes()); n != tt.wantVols {
			t.Errorf("case %d: %d volumes; want %d", i, n, tt.wantVols)
		}
	}
	s.Inject(Fault{Kind: Fault500, Path: "/version"})
	if r := do(t, s, "GET", "/version", "", nil, -1); r.code != 500 {
		t.Errorf("GET /version with Fault500 = %d; want 500", r.code)
	}
	if r := do(t, s, "GET", "/version", "", nil, -1); r.code != 200 {
		t.Errorf("GET /version after the one-shot fault = %d; want 200", r.code)
	}
}

func TestAuthRequired(t *testing.T) {
	t.Parallel()
	s := New()
	defer s.Close()
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, auth := range []string{"", "PVEAPIToken=" + s.TokenID() + "=wrong", fmt.Sprintf("PVEAuthCookie=%s", s.Secret())} {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", s.URL+"/version", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("GET /version with auth %q = %d; want 401", strings.SplitN(auth, "=", 2)[0], resp.StatusCode)
		}
	}
}

func TestConnectionFaults(t *testing.T) {
	t.Parallel()
	s := New()
	defer s.Close()
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	get := func(ctx context.Context) (*http.Response, []byte, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/version", nil)
		req.Header.Set("Authorization", "PVEAPIToken="+s.Token())
		resp, err := hc.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	s.Inject(Fault{Kind: FaultStatus, Path: "/version", Code: 429, RetryAfter: "3"})
	if resp, _, err := get(context.Background()); err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" {
		t.Errorf("FaultStatus 429: %v, %v; want 429 with Retry-After 3", resp, err)
	}
	s.Inject(Fault{Kind: FaultReset, Path: "/version"})
	if _, _, err := get(context.Background()); err == nil {
		t.Error("FaultReset: no error; want the connection dropped")
	}
	s.Inject(Fault{Kind: FaultCutReply, Path: "/version"})
	if resp, _, err := get(context.Background()); err == nil {
		t.Errorf("FaultCutReply: %v; want a body cut short", resp.Status)
	}
	s.Inject(Fault{Kind: FaultHang, Path: "/version"})
	// A hanging call ends only when the client gives up (once the server has it).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := len(s.Requests())
	done := make(chan error, 1)
	go func() { _, _, err := get(ctx); done <- err }()
	for deadline := time.Now().Add(10 * time.Second); len(s.Requests()) == seen && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("FaultHang: %v; want no answer until the client gave up", err)
	}
	// The server notices the client leaving; HangEnds says so.
	for deadline := time.Now().Add(10 * time.Second); len(s.HangEnds()) == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if ends := s.HangEnds(); len(ends) != 1 || !strings.Contains(ends[0], "GET /api2/json/version ended after") || !strings.Contains(ends[0], "request context") {
		t.Errorf("HangEnds() = %q; want one entry for GET /version, ended by its request context", ends)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if resp, _, err := get(ctx2); err != nil || resp.StatusCode != 200 {
		t.Errorf("after one-shot faults: %v, %v; want 200", resp, err)
	}
}
