package proxmox

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Sentinel errors callers branch on.
var (
	// ErrTaskFailed: a PVE task ended with an exit status other than OK or WARNINGS: n.
	ErrTaskFailed = errors.New("proxmox task failed")
	// ErrChecksumMismatch: PVE computed a different checksum than the lock's.
	ErrChecksumMismatch = errors.New("checksum mismatch")
	// ErrUnauthorized: PVE refused the token (401/403).
	ErrUnauthorized = errors.New("proxmox refused the API token")
	// ErrNoChecksum: the lock has no checksum for an artifact that must be verified.
	ErrNoChecksum = errors.New("no checksum in the lock")
	// ErrVMIDTaken: the VMID imgpipe would use belongs to a VM it did not make.
	ErrVMIDTaken = errors.New("VMID is taken by a VM imgpipe did not make")
)

// HTTPError is a non-2xx reply from the PVE API.
type HTTPError struct {
	Method string
	Path   string
	Code   int
	Status string
	// Params holds PVE's per-parameter messages of a 400 reply.
	Params map[string]string
	// Message is PVE's message, when it sent one in the body.
	Message string
	// RetryAfter is the server's Retry-After (seconds or HTTP-date), when it sent one.
	RetryAfter    time.Duration
	hasRetryAfter bool
}

func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s", e.Method, e.Path, e.Status)
	for _, k := range slices.Sorted(maps.Keys(e.Params)) {
		fmt.Fprintf(&b, "; %s: %s", k, e.Params[k])
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	return b.String()
}

// TaskError is a failed PVE task with the tail of its log.
type TaskError struct {
	UPID       string
	Node       string
	Type       string
	ExitStatus string
	// Log is the last lines of the task log.
	Log []string
}

func (e *TaskError) Error() string {
	msg := fmt.Sprintf("task %s on %s failed: %s", e.Type, e.Node, e.ExitStatus)
	if len(e.Log) > 0 {
		msg += "; log tail: " + strings.Join(e.Log, " | ")
	}
	return msg
}

// Is makes errors.Is(err, ErrTaskFailed) hold, and ErrChecksumMismatch when PVE said so.
func (e *TaskError) Is(target error) bool {
	switch target {
	case ErrTaskFailed:
		return true
	case ErrChecksumMismatch:
		return strings.Contains(e.ExitStatus, "checksum mismatch")
	}
	return false
}
