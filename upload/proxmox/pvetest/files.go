package pvetest

import (
	"compress/gzip"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

var (
	isoNameRE    = regexp.MustCompile(`(?i)\.(?:iso|img)$`)
	vztmplNameRE = regexp.MustCompile(`\.tar\.(?:gz|xz|zst|bz2)$`)
	importNameRE = regexp.MustCompile(`^[a-zA-Z0-9\-.+=_]+\.(ova|qcow2|raw|vmdk)$`)
	normalizeRE  = regexp.MustCompile(`[^a-zA-Z0-9_.\-]`)
)

// versionAtLeast compares "9.1.3" style versions.
func versionAtLeast(v string, major, minor int) bool {
	parts := strings.Split(v, ".")
	ma, _ := strconv.Atoi(parts[0])
	mi := 0
	if len(parts) > 1 {
		mi, _ = strconv.Atoi(parts[1])
	}
	return ma > major || (ma == major && mi >= minor)
}

// withContentEnum narrows the content enum to what the configured version knows.
func (s *Server) withContentEnum(sp spec) spec {
	p := sp.params["content"]
	if versionAtLeast(s.version, 8, 4) {
		p.enum = contentEnum
	} else {
		p.enum = []string{"iso", "vztmpl"}
	}
	sp.params["content"] = p
	return sp
}

// checkFile applies PVE's per-content filename rules and the storage's content
// types. It returns the normalized filename, or writes the error reply.
func (s *Server) checkFile(w http.ResponseWriter, storage, content, filename string) (string, bool) {
	filename = normalizeRE.ReplaceAllString(filename, "_")
	var ok bool
	switch content {
	case "iso":
		ok = isoNameRE.MatchString(filename)
	case "vztmpl":
		ok = vztmplNameRE.MatchString(filename)
	case "import":
		ok = importNameRE.MatchString(filename)
	}
	if !ok {
		writeParamErrors(w, map[string]string{"filename": "wrong file extension"})
		return "", false
	}
	if !contains(s.storage(storage).Content, content) {
		writeStatus(w, http.StatusInternalServerError, fmt.Sprintf("storage '%s' does not support content-type '%s'", storage, content))
		return "", false
	}
	return filename, true
}

func newHash(alg string) hash.Hash {
	switch alg {
	case "md5":
		return md5.New()
	case "sha1":
		return sha1.New()
	case "sha224":
		return sha256.New224()
	case "sha384":
		return sha512.New384()
	case "sha512":
		return sha512.New()
	default:
		return sha256.New()
	}
}

func formatOf(content, filename string) string {
	if content == "iso" {
		return "iso"
	}
	if i := strings.LastIndexByte(filename, '.'); i >= 0 {
		return filename[i+1:]
	}
	return "raw"
}

// worker fills in the import task: checksum check, then the file appears. The
// caller holds s.mu.
func (s *Server) worker(t *task, path, node, storage, content, filename string, size int64, sums map[string]string, expect, alg string) {
	volid := storage + ":" + content + "/" + filename
	key := s.scope(node, storage) + "|" + volid
	got := sums[alg]
	if _, ok := s.takeFaultLocked(http.MethodPost, path, FaultChecksumMismatch); ok {
		got = strings.Repeat("0", len(got))
	}
	t.log = append(t.log, "target node: "+node, "target file: /var/lib/vz/"+content+"/"+filename, fmt.Sprintf("file size is: %d", size))
	if expect != "" {
		t.log = append(t.log, "calculating checksum...")
		if !strings.EqualFold(got, expect) {
			t.exit = fmt.Sprintf("checksum mismatch: got '%s' != expect '%s'", got, expect)
			return
		}
		t.log = append(t.log, "checksum verified")
	}
	vol := &Volume{Node: s.scope(node, storage), Storage: storage, VolID: volid, Content: content,
		Format: formatOf(content, filename), Size: size, SHA256: sums["sha256"]}
	t.apply = func() {
		vol.CTime = nowUnix()
		s.volumes[key] = vol
	}
	if _, ok := s.takeFaultLocked(http.MethodPost, path, FaultPartialVolume); ok {
		t.exit = fmt.Sprintf("command 'cp -- /var/tmp/pveupload-0 /var/lib/vz/%s/%s' failed: got signal 9", content, filename)
		t.partial = func() {
			half := *vol
			half.Size = size / 2
			half.SHA256 = ""
			half.CTime = nowUnix()
			s.volumes[key] = &half
		}
		return
	}
	s.applyTaskFaults(http.MethodPost, path, t)
}

func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request, path, node, storage string) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, err.Error())
		return
	}
	rec := UploadRecord{Node: node, Storage: storage, Query: q}
	defer func() {
		if rec.Node == "" { // already recorded before a simulated cut
			return
		}
		s.mu.Lock()
		s.uploads = append(s.uploads, rec)
		s.mu.Unlock()
	}()
	mt, mp, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || mp["boundary"] == "" {
		writeStatus(w, http.StatusBadRequest, "upload needs Content-Type multipart/form-data with a boundary")
		return
	}
	if r.ContentLength < 0 {
		writeStatus(w, http.StatusLengthRequired, "missing Content-Length")
		return
	}
	if q.Has("tmpfilename") {
		writeParamErrors(w, map[string]string{"tmpfilename": "only allowed on the trusted localhost port"})
		return
	}
	vals := map[string]string{"node": node, "storage": storage}
	for k, v := range q {
		vals[k] = v[len(v)-1]
	}
	mr := multipart.NewReader(r.Body, mp["boundary"])
	order := []string{"content", "checksum-algorithm", "checksum"}
	next := 0
	var file *multipart.Part
	for file == nil {
		part, err := mr.NextPart()
		if err != nil {
			writeStatus(w, http.StatusBadRequest, "incomplete upload: "+err.Error())
			return
		}
		name := part.FormName()
		if part.FileName() != "" {
			if name != "filename" {
				writeStatus(w, http.StatusInternalServerError, fmt.Sprintf("wrong field name '%s' for file upload, expected 'filename'", name))
				return
			}
			file = part
			break
		}
		i := indexOf(order[next:], name)
		if i < 0 {
			writeStatus(w, http.StatusInternalServerError, fmt.Sprintf("wrong Content-Disposition 'form-data; name=\"%s\"' expected 'form-data'", name))
			return
		}
		next += i + 1
		b, err := io.ReadAll(io.LimitReader(part, 4096))
		if err != nil {
			writeStatus(w, http.StatusBadRequest, "incomplete upload: "+err.Error())
			return
		}
		vals[name] = string(b)
		rec.Fields = append(rec.Fields, name)
	}
	vals["filename"] = file.FileName()
	rec.Filename = file.FileName()
	if errs := s.withContentEnum(uploadSpec()).validate(vals); errs != nil {
		writeParamErrors(w, errs)
		return
	}
	filename, ok := s.checkFile(w, storage, vals["content"], vals["filename"])
	if !ok {
		return
	}
	alg := vals["checksum-algorithm"]
	hashes := map[string]hash.Hash{"sha256": sha256.New()}
	if alg != "" {
		hashes[alg] = newHash(alg)
	}
	writers := make([]io.Writer, 0, len(hashes))
	for _, h := range hashes {
		writers = append(writers, h)
	}
	var src io.Reader = file
	cut, isCut := s.takeFault(http.MethodPost, path, FaultCutUpload)
	if isCut {
		src = io.LimitReader(file, cut.After)
	}
	stall, isStall := s.takeFault(http.MethodPost, path, FaultStallUpload)
	if isStall {
		src = io.LimitReader(file, stall.After)
	}
	n, err := io.CopyBuffer(io.MultiWriter(writers...), src, make([]byte, 1<<20))
	rec.Bytes = n
	if isStall {
		// Stop reading and hold the connection, as a wedged node would.
		s.hang(r)
		return
	}
	if isCut {
		// Drop the connection mid-body, as a crashed proxy or node would.
		s.mu.Lock()
		s.uploads = append(s.uploads, rec)
		s.mu.Unlock()
		rec = UploadRecord{}
		panic(http.ErrAbortHandler)
	}
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "incomplete upload: "+err.Error())
		return
	}
	if _, err := mr.NextPart(); err != io.EOF {
		writeStatus(w, http.StatusBadRequest, "unexpected data after the file part")
		return
	}
	rec.Complete = true
	sums := map[string]string{}
	for k, h := range hashes {
		sums[k] = hex.EncodeToString(h.Sum(nil))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.newTask(node, "imgcopy", "")
	t.log = append(t.log, "starting file import from: /var/tmp/pveupload-"+sums["sha256"][:32])
	s.worker(t, path, node, storage, vals["content"], filename, n, sums, vals["checksum"], alg)
	s.replyTask(w, t)
}

func indexOf(list []string, v string) int {
	for i, s := range list {
		if s == v {
			return i
		}
	}
	return -1
}

func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request, path, node, storage string) {
	vals, ok := checked(w, r, s.withContentEnum(downloadSpec()), map[string]string{"node": node, "storage": storage})
	if !ok {
		return
	}
	content := vals["content"]
	filename, ok := s.checkFile(w, storage, content, vals["filename"])
	if !ok {
		return
	}
	comp := vals["compression"]
	if comp != "" && content != "iso" {
		writeStatus(w, http.StatusInternalServerError, "decompression not supported for "+content)
		return
	}
	client := s.fetch
	if v, ok := vals["verify-certificates"]; ok && (v == "0" || strings.EqualFold(v, "false")) {
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	}
	alg := vals["checksum-algorithm"]
	sums, size, ferr := fetchSums(r, client, vals["url"], comp, alg)

	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.newTask(node, "download", filename)
	t.log = append(t.log, "downloading "+vals["url"]+" to /var/lib/vz/"+content+"/"+filename)
	if ferr != nil {
		t.exit = "download failed: " + ferr.Error()
		t.log = append(t.log, t.exit)
		s.replyTask(w, t)
		return
	}
	t.log = append(t.log, fmt.Sprintf("download finished: %d bytes", size))
	s.worker(t, path, node, storage, content, filename, size, sums, vals["checksum"], alg)
	s.replyTask(w, t)
}

// fetchSums downloads u and returns its checksums (after decompression) and size.
func fetchSums(r *http.Request, client *http.Client, u, comp, alg string) (map[string]string, int64, error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("%s", resp.Status)
	}
	var body io.Reader = resp.Body
	switch comp {
	case "":
	case "gz":
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, 0, err
		}
		body = zr
	default:
		return nil, 0, fmt.Errorf("the fake does not decompress %s", comp)
	}
	hashes := map[string]hash.Hash{"sha256": sha256.New()}
	if alg != "" {
		hashes[alg] = newHash(alg)
	}
	ws := []io.Writer{}
	for _, h := range hashes {
		ws = append(ws, h)
	}
	n, err := io.Copy(io.MultiWriter(ws...), body)
	if err != nil {
		return nil, n, err
	}
	sums := map[string]string{}
	for k, h := range hashes {
		sums[k] = hex.EncodeToString(h.Sum(nil))
	}
	return sums, n, nil
}
