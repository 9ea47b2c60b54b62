package pvetest

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Storage is one storage as the fake presents it.
type Storage struct {
	Name    string
	Type    string // dir, lvmthin, nfs, ...
	Shared  bool
	Content []string // iso, import, images, ...
}

// Volume is a file on a storage (an ISO or an import image).
type Volume struct {
	Node    string // empty for shared storage
	Storage string
	VolID   string // local:iso/talos.iso
	Content string // iso | import | images
	Format  string
	Size    int64
	CTime   int64
	SHA256  string
}

// VM is a virtual machine or template.
type VM struct {
	Node     string
	VMID     int
	Name     string
	Template bool
	Tags     string
	Config   map[string]string
}

// FaultKind selects a failure to inject.
type FaultKind int

// Faults the fake can inject into the next matching request.
const (
	// Fault500 answers the request with HTTP 500.
	Fault500 FaultKind = iota + 1
	// FaultCutUpload drops the connection after After bytes of an uploaded file.
	FaultCutUpload
	// FaultTaskFail makes the task started by the request fail with Message.
	FaultTaskFail
	// FaultTaskWarn makes the task end with "WARNINGS: 1" (a success for PVE).
	FaultTaskWarn
	// FaultChecksumMismatch makes the worker compute a checksum that does not match.
	FaultChecksumMismatch
	// FaultPartialVolume makes the worker leave a truncated file under the final
	// name and then fail, as a copy that dies half-way would.
	FaultPartialVolume
	// FaultStatus answers the request with Code (and a Retry-After header when
	// RetryAfter is set), as a proxy in front of PVE or a busy pveproxy would.
	FaultStatus
	// FaultHang accepts the request and never answers (until the client gives up
	// or the server closes), as a PVE call stuck on a dead storage does.
	FaultHang
	// FaultReset drops the connection without an answer.
	FaultReset
	// FaultCutReply starts a 200 answer and drops the connection mid-body.
	FaultCutReply
	// FaultStallUpload reads After bytes of an uploaded file and then stops
	// reading, holding the connection open.
	FaultStallUpload
)

// Fault is a one-shot failure for the first request whose method matches and whose
// API path (below /api2/json) contains Path.
type Fault struct {
	Kind    FaultKind
	Method  string
	Path    string
	After   int64
	Message string
	// Code and RetryAfter shape a FaultStatus reply.
	Code       int
	RetryAfter string
}

// UploadRecord describes one upload request as the server received it.
type UploadRecord struct {
	Node, Storage string
	// Fields lists the multipart text fields in the order they arrived.
	Fields []string
	// Query holds the parameters sent in the URL.
	Query    url.Values
	Filename string
	Bytes    int64
	Complete bool
}

// TaskRecord is a finished or running task.
type TaskRecord struct {
	UPID       string
	Type       string
	Status     string
	ExitStatus string
}

type task struct {
	upid, node, typ, id, user string
	polls                     int
	exit                      string
	log                       []string
	apply                     func() // state change on success
	partial                   func() // state change of a failure that leaves debris
	done                      bool
}

// Server is a fake Proxmox VE API on a loopback TLS listener.
type Server struct {
	// URL is the API base, https://127.0.0.1:PORT/api2/json.
	URL string

	srv       *httptest.Server
	tokenID   string
	secret    string
	version   string
	taskPolls int
	fetch     *http.Client

	mu       sync.Mutex
	nodes    []string
	storages []Storage
	volumes  map[string]*Volume // key: scope "|" volid
	vms      map[int]*VM
	tasks    map[string]*task
	faults   []Fault
	requests []string
	hangEnds []string // see HangEnds
	uploads  []UploadRecord
	pid      int
	// closing is closed by Close so that hanging handlers return.
	closing   chan struct{}
	closeOnce sync.Once
}

// Option configures a Server.
type Option func(*Server)

// WithVersion sets the PVE version ("9.1.3" by default). Before 8.4 the import
// content type does not exist.
func WithVersion(v string) Option { return func(s *Server) { s.version = v } }

// WithNodes sets the cluster's node names (default "pve1").
func WithNodes(nodes ...string) Option { return func(s *Server) { s.nodes = nodes } }

// WithStorages replaces the default storages ("local": dir with iso,vztmpl,import;
// "local-lvm": lvmthin with images,rootdir).
func WithStorages(st ...Storage) Option { return func(s *Server) { s.storages = st } }

// WithToken sets the accepted API token id and secret.
func WithToken(id, secret string) Option {
	return func(s *Server) { s.tokenID, s.secret = id, secret }
}

// WithTaskPolls sets how many status polls report a task as running (default 1);
// with 0 a task has finished by the time its UPID is returned.
func WithTaskPolls(n int) Option { return func(s *Server) { s.taskPolls = n } }

// WithFetchClient sets the HTTP client download-url uses to fetch URLs.
func WithFetchClient(c *http.Client) Option { return func(s *Server) { s.fetch = c } }

// New starts a fake PVE. Close it when done.
func New(opts ...Option) *Server {
	s := &Server{
		tokenID:   "imgpipe@pve!ci",
		secret:    "5f0c1a52-7a4e-4f3e-9a77-2b1d3c4e5f60",
		version:   "9.1.3",
		taskPolls: 1,
		nodes:     []string{"pve1"},
		storages: []Storage{
			{Name: "local", Type: "dir", Content: []string{"iso", "vztmpl", "import", "backup", "snippets"}},
			{Name: "local-lvm", Type: "lvmthin", Content: []string{"images", "rootdir"}},
		},
		volumes: map[string]*Volume{},
		vms:     map[int]*VM{},
		tasks:   map[string]*task{},
		pid:     0x1a2b3,
		fetch:   &http.Client{Timeout: time.Minute},
		closing: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	s.srv = httptest.NewUnstartedServer(s)
	// Handshake failures are what TLS tests provoke; keep them off stderr.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.StartTLS()
	s.URL = s.srv.URL + "/api2/json"
	return s
}

// Close shuts the server down.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.srv.Close()
}

// TokenID is the accepted token id (user@realm!name).
func (s *Server) TokenID() string { return s.tokenID }

// Secret is the accepted token secret.
func (s *Server) Secret() string { return s.secret }

// Token is the token in PVEAPIToken form: user@realm!name=secret.
func (s *Server) Token() string { return s.tokenID + "=" + s.secret }

// Certificate is the server's self-signed certificate.
func (s *Server) Certificate() *x509.Certificate { return s.srv.Certificate() }

// CertPEM is the certificate in PEM form, usable as a --proxmox-ca file.
func (s *Server) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// Fingerprint is the SHA-256 fingerprint of the certificate as PVE shows it
// (upper-case hex pairs separated by colons).
func (s *Server) Fingerprint() string {
	sum := sha256.Sum256(s.srv.Certificate().Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// TLSConfig returns the server's TLS configuration (for tests that need the listener's).
func (s *Server) TLSConfig() *tls.Config { return s.srv.TLS }

// Inject queues a one-shot fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// AddVolume places a file on a storage, as if someone had uploaded it.
func (s *Server) AddVolume(v Volume) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v.CTime == 0 {
		v.CTime = time.Now().Unix()
	}
	if s.storage(v.Storage).Shared {
		v.Node = ""
	}
	s.volumes[v.Node+"|"+v.VolID] = &v
}

// AddVM creates a VM or template directly.
func (s *Server) AddVM(vm VM) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if vm.Config == nil {
		vm.Config = map[string]string{}
	}
	s.vms[vm.VMID] = &vm
}

// Volumes lists all files, sorted by volid.
func (s *Server) Volumes() []Volume {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Volume, 0, len(s.volumes))
	for _, v := range s.volumes {
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node+out[i].VolID < out[j].Node+out[j].VolID })
	return out
}

// VMs lists all VMs, sorted by VMID.
func (s *Server) VMs() []VM {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]VM, 0, len(s.vms))
	for _, v := range s.vms {
		c := *v
		c.Config = map[string]string{}
		for k, val := range v.Config {
			c.Config[k] = val
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VMID < out[j].VMID })
	return out
}

// Requests lists "METHOD /path" of every request received, in order.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// Uploads lists the upload requests received.
func (s *Server) Uploads() []UploadRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]UploadRecord(nil), s.uploads...)
}

// Tasks lists all tasks.
func (s *Server) Tasks() []TaskRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []TaskRecord
	for _, t := range s.tasks {
		r := TaskRecord{UPID: t.upid, Type: t.typ, Status: "running"}
		if t.done {
			r.Status, r.ExitStatus = "stopped", t.exit
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UPID < out[j].UPID })
	return out
}

// takeFault removes and returns the first queued fault matching the request.
func (s *Server) takeFault(method, path string, kinds ...FaultKind) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.takeFaultLocked(method, path, kinds...)
}

// takeFaultLocked is takeFault for callers that hold s.mu.
func (s *Server) takeFaultLocked(method, path string, kinds ...FaultKind) (Fault, bool) {
	for i, f := range s.faults {
		if (f.Method == "" || f.Method == method) && strings.Contains(path, f.Path) && containsKind(kinds, f.Kind) {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
			return f, true
		}
	}
	return Fault{}, false
}

func containsKind(ks []FaultKind, k FaultKind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func (s *Server) storage(name string) Storage {
	for _, st := range s.storages {
		if st.Name == name {
			return st
		}
	}
	return Storage{}
}

func (s *Server) hasNode(n string) bool { return contains(s.nodes, n) }

// scope is the volumes-map prefix of a storage on a node.
func (s *Server) scope(node, storage string) string {
	if s.storage(storage).Shared {
		return ""
	}
	return node
}

// newTask registers a task; the caller holds s.mu.
func (s *Server) newTask(node, typ, id string) *task {
	s.pid++
	now := time.Now().Unix()
	// PVE escapes ':' in the id (volids, filenames) so the UPID keeps nine fields.
	id = strings.ReplaceAll(id, ":", `\x3a`)
	upid := fmt.Sprintf("UPID:%s:%08X:%08X:%08X:%s:%s:%s:", node, s.pid, s.pid*7, now, typ, id, s.tokenID)
	t := &task{upid: upid, node: node, typ: typ, id: id, user: s.tokenID, polls: s.taskPolls, exit: "OK"}
	s.tasks[upid] = t
	return t
}

// finish ends a task and applies its effect; the caller holds s.mu.
func (s *Server) finish(t *task) {
	if t.done {
		return
	}
	t.done = true
	if t.partial != nil {
		t.partial()
	}
	if (t.exit == "OK" || strings.HasPrefix(t.exit, "WARNINGS: ")) && t.apply != nil {
		t.apply()
	}
	if t.exit == "OK" {
		t.log = append(t.log, "TASK OK")
	} else if strings.HasPrefix(t.exit, "WARNINGS: ") {
		t.log = append(t.log, "TASK "+t.exit)
	} else {
		t.log = append(t.log, "TASK ERROR: "+t.exit)
	}
}

// applyTaskFaults lets injected task faults change a task's outcome; the caller holds s.mu.
func (s *Server) applyTaskFaults(method, path string, t *task) {
	if f, ok := s.takeFaultLocked(method, path, FaultTaskFail); ok {
		msg := f.Message
		if msg == "" {
			msg = "injected failure"
		}
		t.log = append(t.log, msg)
		t.exit = msg
		return
	}
	if _, ok := s.takeFaultLocked(method, path, FaultTaskWarn); ok {
		t.log = append(t.log, "WARN: injected warning")
		t.exit = "WARNINGS: 1"
	}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, "/api2/json")
	if !ok {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+path)
	s.mu.Unlock()

	if r.Header.Get("Authorization") != "PVEAPIToken="+s.tokenID+"="+s.secret {
		writeStatus(w, http.StatusUnauthorized, "authentication failure")
		return
	}
	if s.injected(w, r, path) {
		return
	}
	// Split the escaped path so that an escaped "/" inside a UPID stays in its segment.
	rawPath, _ := strings.CutPrefix(r.URL.EscapedPath(), "/api2/json")
	segs := strings.Split(strings.Trim(rawPath, "/"), "/")
	for i, seg := range segs {
		if u, err := url.PathUnescape(seg); err == nil {
			segs[i] = u
		}
	}
	switch {
	case match(segs, "version") && r.Method == http.MethodGet:
		s.handleVersion(w, r)
	case match(segs, "cluster", "resources") && r.Method == http.MethodGet:
		s.handleResources(w, r)
	case len(segs) >= 2 && segs[0] == "nodes":
		s.handleNode(w, r, path, segs[1], segs[2:])
	default:
		writeStatus(w, http.StatusNotImplemented, fmt.Sprintf("Method '%s %s' not implemented", r.Method, path))
	}
}

// injected plays a fault that replaces the whole answer; it reports whether one did.
func (s *Server) injected(w http.ResponseWriter, r *http.Request, path string) bool {
	f, ok := s.takeFault(r.Method, path, Fault500, FaultStatus, FaultHang, FaultReset, FaultCutReply)
	if !ok {
		return false
	}
	switch f.Kind {
	case Fault500:
		writeStatus(w, http.StatusInternalServerError, "injected internal error")
	case FaultStatus:
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		writeStatus(w, f.Code, "injected status "+strconv.Itoa(f.Code))
	case FaultHang:
		s.hang(r)
	case FaultReset:
		panic(http.ErrAbortHandler)
	case FaultCutReply:
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.Header().Set("Content-Length", "4096")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"data":{"status":"runn`))
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	return true
}

// hang blocks until the client goes away or the server closes.
func (s *Server) hang(r *http.Request) {
	start := time.Now()
	why := "server closing"
	select {
	case <-r.Context().Done():
		why = "request context: " + context.Cause(r.Context()).Error()
	case <-s.closing:
	}
	s.mu.Lock()
	s.hangEnds = append(s.hangEnds, fmt.Sprintf("%s %s ended after %s (%s)", r.Method, r.URL.Path, time.Since(start).Round(time.Millisecond), why))
	s.mu.Unlock()
}

// HangEnds says, for each FaultHang played, when and why it stopped hanging: the
// diagnosis of a client that got an answer where it should have timed out.
func (s *Server) HangEnds() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.hangEnds...)
}

func match(segs []string, want ...string) bool {
	if len(segs) != len(want) {
		return false
	}
	for i := range want {
		if want[i] != "*" && segs[i] != want[i] {
			return false
		}
	}
	return true
}

func (s *Server) handleNode(w http.ResponseWriter, r *http.Request, path, node string, rest []string) {
	if !s.hasNode(node) {
		writeStatus(w, http.StatusInternalServerError, fmt.Sprintf("hostname lookup '%s' failed - failed to get address info for: %s: Name or service not known", node, node))
		return
	}
	m := r.Method
	switch {
	case len(rest) >= 2 && rest[0] == "storage":
		st := rest[1]
		if s.storage(st).Name == "" {
			writeStatus(w, http.StatusInternalServerError, fmt.Sprintf("storage '%s' does not exist", st))
			return
		}
		switch {
		case match(rest, "storage", "*", "status") && m == http.MethodGet:
			s.handleStorageStatus(w, r, node, st)
		case match(rest, "storage", "*", "content") && m == http.MethodGet:
			s.handleContentList(w, r, node, st)
		case len(rest) >= 4 && rest[2] == "content" && (m == http.MethodGet || m == http.MethodDelete):
			s.handleVolume(w, r, node, st, strings.Join(rest[3:], "/"))
		case match(rest, "storage", "*", "upload") && m == http.MethodPost:
			s.handleUpload(w, r, path, node, st)
		case match(rest, "storage", "*", "download-url") && m == http.MethodPost:
			s.handleDownload(w, r, path, node, st)
		default:
			writeStatus(w, http.StatusNotImplemented, "not implemented")
		}
	case len(rest) >= 2 && rest[0] == "tasks":
		s.handleTask(w, r, node, rest[1], rest[2:])
	case match(rest, "qemu") && m == http.MethodPost:
		s.handleCreateVM(w, r, path, node)
	case len(rest) >= 2 && rest[0] == "qemu":
		s.handleVM(w, r, path, node, rest[1], rest[2:])
	default:
		writeStatus(w, http.StatusNotImplemented, "not implemented")
	}
}

// params collects query and body parameters plus the path's own.
func params(r *http.Request, pathParams map[string]string) (map[string]string, error) {
	vals := map[string]string{}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, err
	}
	for k, v := range q {
		vals[k] = v[len(v)-1]
	}
	if r.Body != nil && r.Method != http.MethodGet {
		ct := r.Header.Get("Content-Type")
		body, err := io.ReadAll(io.LimitReader(r.Body, 512<<10+1))
		if err != nil {
			return nil, err
		}
		if len(body) > 512<<10 {
			return nil, fmt.Errorf("request too large")
		}
		switch {
		case len(body) == 0:
		case strings.HasPrefix(ct, "application/json"):
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(body, &raw); err != nil {
				return nil, fmt.Errorf("decoding JSON body: %w", err)
			}
			flat, err := flatten(raw)
			if err != nil {
				return nil, err
			}
			for k, v := range flat {
				vals[k] = v
			}
		default:
			form, err := url.ParseQuery(string(body))
			if err != nil {
				return nil, err
			}
			for k, v := range form {
				vals[k] = v[len(v)-1]
			}
		}
	}
	for k, v := range pathParams {
		vals[k] = v
	}
	return vals, nil
}

// checked parses and validates parameters, writing the 400 reply on failure.
func checked(w http.ResponseWriter, r *http.Request, sp spec, pathParams map[string]string) (map[string]string, bool) {
	vals, err := params(r, pathParams)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	if errs := sp.validate(vals); errs != nil {
		writeParamErrors(w, errs)
		return nil, false
	}
	return vals, true
}

func writeData(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_ = json.NewEncoder(w).Encode(map[string]any{"data": v})
}

func writeStatus(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"data": nil, "message": msg})
}

func writeParamErrors(w http.ResponseWriter, errs map[string]string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{"data": nil, "errors": errs})
}

func (s *Server) handleVersion(w http.ResponseWriter, r *http.Request) {
	if _, ok := checked(w, r, spec{}, nil); !ok {
		return
	}
	release := s.version
	if parts := strings.Split(s.version, "."); len(parts) >= 2 {
		release = parts[0] + "." + parts[1]
	}
	writeData(w, map[string]any{"version": s.version, "release": release, "repoid": "0badc0de"})
}

func (s *Server) handleResources(w http.ResponseWriter, r *http.Request) {
	vals, ok := checked(w, r, simpleSpec(map[string]param{
		"type": {kind: tString, optional: true, enum: []string{"vm", "storage", "node", "sdn"}},
	}), nil)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	typ := vals["type"]
	if typ == "" || typ == "vm" {
		for _, id := range sortedVMIDs(s.vms) {
			vm := s.vms[id]
			out = append(out, map[string]any{"id": fmt.Sprintf("qemu/%d", vm.VMID), "type": "qemu", "vmid": vm.VMID,
				"name": vm.Name, "node": vm.Node, "template": b2i(vm.Template), "tags": vm.Tags, "status": "stopped"})
		}
	}
	if typ == "" || typ == "storage" {
		for _, n := range s.nodes {
			for _, st := range s.storages {
				out = append(out, map[string]any{"id": "storage/" + n + "/" + st.Name, "type": "storage", "storage": st.Name,
					"node": n, "shared": b2i(st.Shared), "content": strings.Join(st.Content, ","), "plugintype": st.Type, "status": "available"})
			}
		}
	}
	if typ == "" || typ == "node" {
		for _, n := range s.nodes {
			out = append(out, map[string]any{"id": "node/" + n, "type": "node", "node": n, "status": "online"})
		}
	}
	if out == nil {
		out = []map[string]any{}
	}
	writeData(w, out)
}

func sortedVMIDs(m map[int]*VM) []int {
	ids := make([]int, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *Server) handleStorageStatus(w http.ResponseWriter, r *http.Request, node, storage string) {
	if _, ok := checked(w, r, simpleSpec(nil, "node", "storage"), map[string]string{"node": node, "storage": storage}); !ok {
		return
	}
	st := s.storage(storage)
	writeData(w, map[string]any{"type": st.Type, "content": strings.Join(st.Content, ","), "active": 1, "enabled": 1,
		"shared": b2i(st.Shared), "total": int64(1) << 40, "used": int64(1) << 30, "avail": int64(1)<<40 - int64(1)<<30})
}

func (s *Server) handleContentList(w http.ResponseWriter, r *http.Request, node, storage string) {
	vals, ok := checked(w, r, simpleSpec(map[string]param{
		"content": {kind: tString, optional: true, enum: storageCT},
		"vmid":    {kind: tInteger, optional: true, min: i64(100), max: i64(999999999)},
	}, "node", "storage"), map[string]string{"node": node, "storage": storage})
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	scope := s.scope(node, storage)
	out := []map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(s.volumes)) {
		v := s.volumes[k]
		if v.Node != scope || v.Storage != storage {
			continue
		}
		if c := vals["content"]; c != "" && c != v.Content {
			continue
		}
		out = append(out, map[string]any{"volid": v.VolID, "content": v.Content, "format": v.Format, "size": v.Size, "ctime": v.CTime})
	}
	writeData(w, out)
}

func (s *Server) handleVolume(w http.ResponseWriter, r *http.Request, node, storage, volume string) {
	extra := map[string]param{}
	if r.Method == http.MethodDelete {
		extra["delay"] = param{kind: tInteger, optional: true, min: i64(1), max: i64(30)}
	}
	sp := simpleSpec(extra, "node", "volume")
	sp.params["storage"] = param{kind: tString, optional: true, pattern: storageIDRE}
	if _, ok := checked(w, r, sp, map[string]string{"node": node, "storage": storage, "volume": volume}); !ok {
		return
	}
	volid := volume
	if !strings.Contains(volid, ":") {
		volid = storage + ":" + volid
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := s.scope(node, storage) + "|" + volid
	v, ok := s.volumes[key]
	if !ok {
		writeStatus(w, http.StatusInternalServerError, fmt.Sprintf("volume '%s' does not exist", volid))
		return
	}
	if r.Method == http.MethodGet {
		writeData(w, map[string]any{"path": "/var/lib/vz/" + strings.SplitN(volid, ":", 2)[1], "size": v.Size, "used": v.Size, "format": v.Format})
		return
	}
	t := s.newTask(node, "imgdel", volid)
	t.apply = func() { delete(s.volumes, key) }
	t.log = append(t.log, "removed volume '"+volid+"'")
	s.replyTask(w, t)
}

var upidRE = regexp.MustCompile(`^UPID:[a-zA-Z0-9\-]+:[0-9A-F]{8}:[0-9A-F]{8,}:[0-9A-F]{8}:[^:]*:[^:]*:[^:]+:$`)

func (s *Server) handleTask(w http.ResponseWriter, r *http.Request, node, upid string, rest []string) {
	var sp spec
	switch {
	case match(rest, "status") && r.Method == http.MethodGet, len(rest) == 0 && r.Method == http.MethodDelete:
		sp = simpleSpec(nil, "node", "upid")
	case match(rest, "log") && r.Method == http.MethodGet:
		sp = simpleSpec(map[string]param{
			"start":    {kind: tInteger, optional: true, min: i64(0)},
			"limit":    {kind: tInteger, optional: true, min: i64(0)},
			"download": {kind: tBoolean, optional: true},
		}, "node", "upid")
	default:
		writeStatus(w, http.StatusNotImplemented, "not implemented")
		return
	}
	vals, ok := checked(w, r, sp, map[string]string{"node": node, "upid": upid})
	if !ok {
		return
	}
	if !upidRE.MatchString(upid) {
		writeStatus(w, http.StatusInternalServerError, "unable to parse worker upid '"+upid+"'")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[upid]
	if !ok || t.node != node {
		writeStatus(w, http.StatusInternalServerError, "no such task")
		return
	}
	switch {
	case r.Method == http.MethodDelete:
		if !t.done {
			t.exit = "interrupted by signal"
			t.apply = nil
			s.finish(t)
		}
		writeData(w, nil)
	case rest[0] == "status":
		st := map[string]any{"upid": t.upid, "node": t.node, "type": t.typ, "id": t.id, "user": t.user,
			"pid": s.pid, "pstart": s.pid * 7, "starttime": time.Now().Unix(), "status": "running"}
		if t.polls > 0 {
			t.polls--
		} else {
			s.finish(t)
			st["status"] = "stopped"
			st["exitstatus"] = t.exit
		}
		writeData(w, st)
	default:
		start, _ := strconv.Atoi(vals["start"])
		limit := 50
		if l, ok := vals["limit"]; ok {
			limit, _ = strconv.Atoi(l)
		}
		out := []map[string]any{}
		for i := start; i < len(t.log) && len(out) < limit; i++ {
			out = append(out, map[string]any{"n": i + 1, "t": t.log[i]})
		}
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		_ = json.NewEncoder(w).Encode(map[string]any{"data": out, "total": len(t.log)})
	}
}

// replyTask answers with the task's UPID; with WithTaskPolls(0) the task is done
// before the reply, as a quick PVE task is. The caller holds s.mu.
func (s *Server) replyTask(w http.ResponseWriter, t *task) {
	if s.taskPolls == 0 {
		s.finish(t)
	}
	writeData(w, t.upid)
}
