package proxmox

import (
	"context"
	"errors"
	"fmt"
	"io"
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
// failed or cancelled transfer is cleaned up (see cleanup): debris under the final
// name is deleted, so a later run never mistakes it for the artifact, but a file
// that a successful task stored is never removed.
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
	res.Action = ActionUploaded
	if method == MethodDownloadURL {
		res.Action = ActionDownloaded
	}
	warn, err := c.transfer(ctx, t, a, method, before)
	if warn != "" {
		res.Warning = strings.TrimSpace(res.Warning + " " + warn)
	}
	if err != nil {
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

// transfer starts the upload or download-url task and waits for it. When the
// task's polls fail (not the task), it asks once more how the task ended: a task
// that succeeded makes the transfer a success.
func (c *Client) transfer(ctx context.Context, t Target, a Artifact, method string, before *VolumeInfo) (string, error) {
	var upid string
	var err error
	switch method {
	case MethodDownloadURL:
		upid, err = c.downloadURL(ctx, t, a)
	case MethodUpload:
		upid, err = c.upload(ctx, t, a)
	default:
		return "", fail.Usage(fmt.Errorf("proxmox.isoMethod %q: use download-url or upload", method))
	}
	var warn string
	if err == nil {
		warn, err = c.Wait(ctx, upid)
		if warn != "" {
			warn = "task: " + warn
		}
	}
	if err == nil {
		return warn, nil
	}
	out := c.cleanup(ctx, t, a, before, upid, err)
	if out.ok && ctx.Err() == nil {
		c.log.Warn("task status polls failed, but the task succeeded", "volume", a.VolID(t.Storage), "node", t.Node, "err", err)
		return strings.TrimSpace("task succeeded after its status polls failed: " + err.Error() + " " + out.warnings), nil
	}
	return warn, err
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

// taskOutcome is what cleanup learned of a task.
type taskOutcome struct {
	known    bool // the task has stopped and its exit status was read
	ok       bool // it stopped with OK or WARNINGS: n
	warnings string
}

// cleanup runs after a failed transfer, even when ctx was cancelled. It first
// settles the task: a task whose polls failed is asked once more how it ended; a
// task still running when the run was cancelled is stopped. Then it deletes what
// the transfer left under the final name (a file that is new or changed since
// before), but only when the task failed, or no task is known and the file is
// not of the artifact's size. A file a successful task stored stays, and so does
// one whose task's outcome is unknown: a rerun compares its size.
func (c *Client) cleanup(ctx context.Context, t Target, a Artifact, before *VolumeInfo, upid string, cause error) taskOutcome {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	volid := a.VolID(t.Storage)
	var out taskOutcome
	var te *TaskError
	switch {
	case errors.As(cause, &te):
		out.known = true
	case upid != "":
		if ctx.Err() != nil {
			if err := c.StopTask(cctx, upid); err != nil {
				c.log.Warn("stopping task after cancel", "err", err)
			}
		}
		out = c.settle(cctx, upid)
		if !out.known || out.ok {
			c.log.Warn("leaving the volume in place: its task succeeded or its outcome is unknown", "volume", volid, "node", t.Node, "task_ok", out.ok)
			return out
		}
	}
	now, err := c.findVolume(cctx, t, a.Content, volid)
	if err != nil {
		c.log.Warn("checking for a partial volume", "volume", volid, "err", err)
		return out
	}
	if now == nil || (before != nil && now.Size == before.Size && now.CTime == before.CTime) {
		return out
	}
	if upid == "" && a.Size > 0 && now.Size == a.Size {
		// PVE verifies the checksum before a file gets its final name (download-url
		// renames a verified temp file; upload's task checks, then copies), so a
		// complete file there is the artifact, stored by a task whose reply was lost.
		c.log.Warn("leaving a complete volume whose transfer reply was lost", "volume", volid, "node", t.Node)
		return out
	}
	c.log.Warn("removing partial volume left by a failed transfer", "volume", volid, "node", t.Node)
	if err := c.DeleteVolume(cctx, t.Node, t.Storage, volid); err != nil && !errors.Is(err, context.Canceled) {
		c.log.Error("removing partial volume", "volume", volid, "err", err)
	}
	return out
}

// settle reads a task's final state once more (with the usual retries).
func (c *Client) settle(ctx context.Context, upid string) taskOutcome {
	u, err := ParseUPID(upid)
	if err != nil {
		return taskOutcome{}
	}
	st, err := c.taskStatus(ctx, u)
	if err != nil || st.Status == "running" {
		return taskOutcome{}
	}
	out := taskOutcome{known: true, ok: st.ExitStatus == "OK" || warningsRE.MatchString(st.ExitStatus)}
	if warningsRE.MatchString(st.ExitStatus) {
		out.warnings = st.ExitStatus
	}
	return out
}
