package proxmox

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// UPID is a parsed PVE task id:
// UPID:<node>:<pid>:<pstart>:<starttime>:<type>:<id>:<user>: (nine fields, trailing colon).
type UPID struct {
	Raw  string
	Node string
	Type string
	ID   string
	User string
}

// pstart can exceed 8 hex digits after 497 days of uptime.
var hex8 = regexp.MustCompile(`^[0-9A-Fa-f]{8,}$`)

// ParseUPID checks the nine-part form (go-proxmox indexes into it blindly).
func ParseUPID(s string) (UPID, error) {
	p := strings.Split(s, ":")
	if len(p) != 9 || p[0] != "UPID" || p[8] != "" || p[1] == "" || !hex8.MatchString(p[2]) ||
		!hex8.MatchString(p[3]) || !hex8.MatchString(p[4]) || p[7] == "" {
		return UPID{}, fmt.Errorf("malformed task id %q", s)
	}
	return UPID{Raw: s, Node: p[1], Type: p[5], ID: p[6], User: p[7]}, nil
}

// escaped is the UPID as one URL path segment: task ids of volume tasks hold
// "/" (and PVE's "\x3a" for ":").
func (u UPID) escaped() string { return url.PathEscape(u.Raw) }

var warningsRE = regexp.MustCompile(`^WARNINGS: \d+$`)

// logTail is how many task log lines go into a TaskError.
const logTail = 12

// taskState is GET /nodes/{node}/tasks/{upid}/status as imgpipe reads it.
type taskState struct {
	Status     string `json:"status"`
	ExitStatus string `json:"exitstatus"`
}

// taskStatus reads a task's state; transient failures are retried (a task poll
// is idempotent), so one 500 or reset does not end the wait.
func (c *Client) taskStatus(ctx context.Context, u UPID) (taskState, error) {
	var st taskState
	if err := c.get(ctx, fmt.Sprintf("/nodes/%s/tasks/%s/status", u.Node, u.escaped()), &st); err != nil {
		return st, fmt.Errorf("polling task %s on %s: %w", u.Type, u.Node, err)
	}
	return st, nil
}

// Wait polls a task until it stops. Success is exit status "OK" or "WARNINGS: n"
// (returned as warnings). Anything else is a *TaskError with the log tail. Unlike
// go-proxmox's Task.Wait it honours ctx between polls and reports failed tasks.
// A poll that still fails after its retries ends the wait with that error; the
// task's outcome is then unknown (it may yet succeed), which callers must not
// mistake for a failed task.
func (c *Client) Wait(ctx context.Context, upid string) (warnings string, err error) {
	u, err := ParseUPID(upid)
	if err != nil {
		return "", err
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for task %s on %s: %w", u.Type, u.Node, ctx.Err())
		case <-t.C:
		}
		st, err := c.taskStatus(ctx, u)
		if err != nil {
			return "", err
		}
		if st.Status == "running" {
			t.Reset(c.poll)
			continue
		}
		switch {
		case st.ExitStatus == "OK":
			return "", nil
		case warningsRE.MatchString(st.ExitStatus):
			c.log.Warn("task finished with warnings", "type", u.Type, "node", u.Node, "exit", st.ExitStatus)
			return st.ExitStatus, nil
		}
		return "", &TaskError{UPID: u.Raw, Node: u.Node, Type: u.Type, ExitStatus: st.ExitStatus, Log: c.taskLog(ctx, u)}
	}
}

// taskLog returns the last lines of a task log (best effort: an error yields none).
func (c *Client) taskLog(ctx context.Context, u UPID) []string {
	var lines []struct {
		N int    `json:"n"`
		T string `json:"t"`
	}
	if err := c.get(ctx, fmt.Sprintf("/nodes/%s/tasks/%s/log?start=0&limit=100000", u.Node, u.escaped()), &lines); err != nil {
		c.log.Debug("reading task log", "upid", u.Raw, "err", err)
		return nil
	}
	out := make([]string, 0, logTail)
	for _, l := range lines[max(0, len(lines)-logTail):] {
		out = append(out, l.T)
	}
	return out
}

// StopTask asks PVE to stop a running task.
func (c *Client) StopTask(ctx context.Context, upid string) error {
	u, err := ParseUPID(upid)
	if err != nil {
		return err
	}
	if err := c.del(ctx, fmt.Sprintf("/nodes/%s/tasks/%s", u.Node, u.escaped()), nil); err != nil {
		return fmt.Errorf("stopping task %s on %s: %w", u.Type, u.Node, err)
	}
	return nil
}
