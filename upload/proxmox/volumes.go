package proxmox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/imgpipe/imgpipe/internal/fail"
)

// Transfer methods (proxmox.isoMethod).
const (
	MethodDownloadURL = "download-url"
	MethodUpload      = "upload"
)

// Actions reported in a Result.
const (
	ActionUploaded      = "uploaded"
	ActionDownloaded    = "downloaded"
	ActionSkipped       = "skipped"
	ActionCreated       = "created"
	ActionRemoved       = "removed"
	ActionWouldUpload   = "would-upload"
	ActionWouldDownload = "would-download"
	ActionWouldCreate   = "would-create"
	ActionWouldRemove   = "would-remove"
)

// Result is one thing done (or, with dry-run, planned) on PVE. It is part of the
// JSON contract of `imgpipe upload -o json`.
type Result struct {
	Kind    string `json:"kind"` // iso | import | template
	Profile string `json:"profile,omitempty"`
	Node    string `json:"node"`
	Storage string `json:"storage,omitempty"`
	Volume  string `json:"volume,omitempty"`
	VMID    int    `json:"vmid,omitempty"`
	Name    string `json:"name,omitempty"`
	Action  string `json:"action"`
	Method  string `json:"method,omitempty"`
	Bytes   int64  `json:"bytes,omitempty"`
	Warning string `json:"warning,omitempty"`
}

// Target is a storage on a node.
type Target struct {
	Node, Storage string
}

// Artifact is a file to place on a storage, by download-url or by upload.
type Artifact struct {
	// Content is iso or import.
	Content string
	// Filename is the content-addressed name on the storage.
	Filename string
	// URL is what PVE downloads (download-url).
	URL string
	// Open yields the bytes to upload; Size is their exact length.
	Open func() (io.ReadCloser, error)
	Size int64
	// Checksum of the bytes PVE stores, and its algorithm.
	Checksum, Algorithm string
}

// VolID is the volume id the artifact gets on storage.
func (a Artifact) VolID(storage string) string { return storage + ":" + a.Content + "/" + a.Filename }

var talosFileRE = regexp.MustCompile(`^talos-([0-9a-f]{12})-(v\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)-([a-z0-9]+)-(amd64|arm64)\.(iso|raw|qcow2)$`)

// FileName is the content-addressed name of an artifact:
// talos-<schematic12>-<version>-<platform>-<arch>.<ext>. The schematic id and the
// Talos version fix the image's content, so a name present on PVE means the file
// is there (PVE exposes no checksums of stored files; the size is compared too).
func FileName(schematicID, version, platform, arch, ext string) (string, error) {
	if len(schematicID) < 12 {
		return "", fail.Usage(fmt.Errorf("schematic id %q is too short: re-run `imgpipe resolve`", schematicID))
	}
	if !strings.HasPrefix(version, "v") {
		version = "v" + version
	}
	name := fmt.Sprintf("talos-%s-%s-%s-%s.%s", strings.ToLower(schematicID[:12]), version, platform, arch, ext)
	if !talosFileRE.MatchString(name) {
		return "", fail.Usage(fmt.Errorf("cannot build a file name from version %q, platform %q, arch %q", version, platform, arch))
	}
	return name, nil
}

func (c *Client) findVolume(ctx context.Context, t Target, content, volid string) (*VolumeInfo, error) {
	vols, err := c.Content(ctx, t.Node, t.Storage, content)
	if err != nil {
		return nil, err
	}
	for i := range vols {
		if vols[i].VolID == volid {
			return &vols[i], nil
		}
	}
	return nil, nil
}

// EnsureVolume puts a on t unless a file of the same name and size is there. A
// failed or cancelled transfer is cleaned up: whatever it left under the final
// name is deleted, so a later run never mistakes debris for the artifact.
func (c *Client) EnsureVolume(ctx context.Context, t Target, a Artifact, method string, dryRun bool) (Result, error) {
	volid := a.VolID(t.Storage)
	res := Result{Kind: a.Content, Node: t.Node, Storage: t.Storage, Volume: volid, Method: method}
	before, err := c.findVolume(ctx, t, a.Content, volid)
	if err != nil {
		return res, err
	}
	if before != nil && (a.Size <= 0 || before.Size == a.Size) {
		res.Action, res.Bytes = ActionSkipped, before.Size
		c.log.Info("already on storage", "volume", volid, "node", t.Node)
		return res, nil
	}
	if before != nil {
		res.Warning = fmt.Sprintf("replacing %s: its size %d is not the artifact's %d", volid, before.Size, a.Size)
	}
	if dryRun {
		res.Action = ActionWouldUpload
		if method == MethodDownloadURL {
			res.Action = ActionWouldDownload
		}
		res.Bytes = a.Size
		return res, nil
	}
	var upid string
	switch method {
	case MethodDownloadURL:
		upid, err = c.downloadURL(ctx, t, a)
		res.Action = ActionDownloaded
	case MethodUpload:
		upid, err = c.upload(ctx, t, a)
		res.Action = ActionUploaded
	default:
		return res, fail.Usage(fmt.Errorf("proxmox.isoMethod %q: use download-url or upload", method))
	}
	if err == nil {
		var warn string
		warn, err = c.Wait(ctx, upid)
		if warn != "" {
			res.Warning = strings.TrimSpace(res.Warning + " task: " + warn)
		}
	}
	if err != nil {
		c.cleanup(ctx, t, a, before, upid)
		return res, err
	}
	after, err := c.findVolume(ctx, t, a.Content, volid)
	if err != nil {
		return res, err
	}
	if after == nil {
		return res, fmt.Errorf("placing %s on %s: the task succeeded but the volume is not listed", volid, t.Node)
	}
	res.Bytes = after.Size
	return res, nil
}

func (c *Client) upload(ctx context.Context, t Target, a Artifact) (string, error) {
	if a.Open == nil {
		return "", fmt.Errorf("uploading %s: no local file", a.Filename)
	}
	rc, err := a.Open()
	if err != nil {
		return "", fmt.Errorf("uploading %s: %w", a.Filename, err)
	}
	defer rc.Close()
	return c.Upload(ctx, UploadRequest{Node: t.Node, Storage: t.Storage, Content: a.Content, Filename: a.Filename,
		Body: rc, Size: a.Size, Checksum: a.Checksum, Algorithm: a.Algorithm})
}

func (c *Client) downloadURL(ctx context.Context, t Target, a Artifact) (string, error) {
	if a.Checksum == "" {
		return "", fail.Usage(fmt.Errorf("download-url of %s: %w", a.Filename, ErrNoChecksum))
	}
	data := map[string]any{
		"content":             a.Content,
		"filename":            a.Filename,
		"url":                 a.URL,
		"checksum":            a.Checksum,
		"checksum-algorithm":  a.Algorithm,
		"verify-certificates": 1,
	}
	var upid string
	if err := c.post(ctx, fmt.Sprintf("/nodes/%s/storage/%s/download-url", t.Node, t.Storage), data, &upid); err != nil {
		return "", fmt.Errorf("asking %s to download %s: %w", t.Node, a.Filename, err)
	}
	return upid, nil
}

// cleanup runs after a failed transfer, even when ctx was cancelled: it stops the
// task and deletes a volume under the final name that was not there before (or
// changed), so no half-written file looks like the real one.
func (c *Client) cleanup(ctx context.Context, t Target, a Artifact, before *VolumeInfo, upid string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if upid != "" && ctx.Err() != nil {
		if err := c.StopTask(cctx, upid); err != nil {
			c.log.Warn("stopping task after cancel", "err", err)
		}
	}
	volid := a.VolID(t.Storage)
	now, err := c.findVolume(cctx, t, a.Content, volid)
	if err != nil {
		c.log.Warn("checking for a partial volume", "volume", volid, "err", err)
		return
	}
	if now == nil || (before != nil && now.Size == before.Size && now.CTime == before.CTime) {
		return
	}
	c.log.Warn("removing partial volume left by a failed transfer", "volume", volid, "node", t.Node)
	if err := c.DeleteVolume(cctx, t.Node, t.Storage, volid); err != nil && !errors.Is(err, context.Canceled) {
		c.log.Error("removing partial volume", "volume", volid, "err", err)
	}
}
