package check

import (
	"time"
)

// Schema identifies the check report format; bump it on incompatible changes.
const Schema = "imgpipe.dev/check/v1"

// Status is an item's outcome.
type Status string

// Item outcomes. Only ok means the item was seen as the lock says.
const (
	OK        Status = "ok"
	Missing   Status = "missing"
	Different Status = "different"
	Stray     Status = "stray"
	// Unchecked: the item could not be looked at; Detail says why.
	Unchecked Status = "unchecked"
	// Skipped: nothing to compare (no mirror configured for the image's upstream).
	Skipped Status = "skipped"
)

// Drift reports whether the status is drift (missing, different or stray).
func (s Status) Drift() bool { return s == Missing || s == Different || s == Stray }

// Check names.
const (
	CheckRegistry = "registry"
	CheckProxmox  = "proxmox"
	CheckFactory  = "factory"
	CheckCluster  = "cluster"
)

// Names lists the checks in report order.
var Names = []string{CheckRegistry, CheckProxmox, CheckFactory, CheckCluster}

// Results of a whole check, and of each section.
const (
	ResultClean      = "clean"
	ResultDrift      = "drift"
	ResultIncomplete = "incomplete"
	// ResultSkipped is a section the site does not configure (or the flags left out).
	ResultSkipped = "skipped"
)

// Exit codes of a check, as the CLI returns them.
const (
	ExitClean      = 0
	ExitIncomplete = 1
	ExitDrift      = 3
)

// Item is one thing the lock declares (or imgpipe made) and what the site has.
// Check+Kind+Name+Where identify it across runs.
type Item struct {
	Check string `json:"check"`
	// Kind: image, signature (registry); iso, import, template (proxmox);
	// schematic (factory); node (cluster); or the check's own name for a check
	// that could not run at all.
	Kind string `json:"kind"`
	// Name: the image reference, volume id, template name, schematic ID or node name.
	Name string `json:"name"`
	// Where: the mirror reference, PVE node (/VMID), factory URL or node address.
	Where   string `json:"where,omitempty"`
	Profile string `json:"profile,omitempty"`
	Status  Status `json:"status"`
	Want    string `json:"want,omitempty"`
	Got     string `json:"got,omitempty"`
	Detail  string `json:"detail,omitempty"`
	// Fix is the command that brings the item in line with the lock.
	Fix string `json:"fix,omitempty"`
}

// Counts tallies items by status.
type Counts struct {
	OK        int `json:"ok"`
	Missing   int `json:"missing"`
	Different int `json:"different"`
	Stray     int `json:"stray"`
	Unchecked int `json:"unchecked"`
	Skipped   int `json:"skipped"`
}

func (c *Counts) add(s Status) {
	switch s {
	case OK:
		c.OK++
	case Missing:
		c.Missing++
	case Different:
		c.Different++
	case Stray:
		c.Stray++
	case Unchecked:
		c.Unchecked++
	case Skipped:
		c.Skipped++
	}
}

// Drifted is the number of drifted items.
func (c Counts) Drifted() int { return c.Missing + c.Different + c.Stray }

// Section is one check's outcome.
type Section struct {
	Name   string `json:"name"`
	Result string `json:"result"`
	Counts Counts `json:"counts"`
	// Notes say how the check looked (what it could not see without side effects).
	Notes   []string `json:"notes,omitempty"`
	Error   string   `json:"error,omitempty"`
	Seconds float64  `json:"seconds"`
}

// Report is a whole check: the JSON contract of `imgpipe check -o json`.
type Report struct {
	Schema    string    `json:"schema"`
	Lock      string    `json:"lock"`
	Talos     string    `json:"talos"`
	CheckedAt time.Time `json:"checked_at"`
	Result    string    `json:"result"`
	ExitCode  int       `json:"exit_code"`
	Totals    Counts    `json:"totals"`
	Checks    []Section `json:"checks"`
	Items     []Item    `json:"items"`
	Seconds   float64   `json:"seconds"`
}

// finish computes each section's and the whole report's result. An unchecked item
// makes the result incomplete (exit 1), which wins over drift: what was not seen
// cannot be called clean, and an operator fixes reachability first.
func (r *Report) finish() {
	r.Totals = Counts{}
	for i := range r.Checks {
		s := &r.Checks[i]
		if s.Result == ResultSkipped {
			continue
		}
		s.Counts = Counts{}
		for _, it := range r.Items {
			if it.Check == s.Name {
				s.Counts.add(it.Status)
			}
		}
		s.Result = resultOf(s.Counts, s.Error != "")
	}
	for _, it := range r.Items {
		r.Totals.add(it.Status)
	}
	r.Result = resultOf(r.Totals, false)
	switch r.Result {
	case ResultClean:
		r.ExitCode = ExitClean
	case ResultDrift:
		r.ExitCode = ExitDrift
	default:
		r.ExitCode = ExitIncomplete
	}
}

func resultOf(c Counts, failed bool) string {
	switch {
	case failed || c.Unchecked > 0:
		return ResultIncomplete
	case c.Drifted() > 0:
		return ResultDrift
	}
	return ResultClean
}

// Drifted lists the items that are drift or unchecked, in report order.
func (r *Report) Drifted() []Item {
	var out []Item
	for _, it := range r.Items {
		if it.Status.Drift() || it.Status == Unchecked {
			out = append(out, it)
		}
	}
	return out
}
