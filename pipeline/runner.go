package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

// Stage names, in the order a build runs them.
const (
	StageResolve   = "resolve"
	StageSchematic = "schematic"
	StageVerify    = "verify"
	StageFetch     = "fetch"
	StageMirror    = "mirror"
	StageUpload    = "upload"
)

// Order is the fixed order of stages.
var Order = []string{StageResolve, StageSchematic, StageVerify, StageFetch, StageMirror, StageUpload}

// ReportSchema identifies the build report format.
const ReportSchema = "imgpipe.dev/build-report/v1"

// Stage statuses in a report.
const (
	StatusDone    = "done"
	StatusSkipped = "skipped" // already done by an earlier run for the same lock
	StatusPlanned = "planned" // --dry-run
	StatusFailed  = "failed"
	StatusPending = "pending" // not reached because an earlier stage failed
)

// Event is a progress event; Runner sends them to its EventFunc (stderr lines or a bar).
type Event struct {
	Time    time.Time `json:"time"`
	Stage   string    `json:"stage"`
	Kind    string    `json:"kind"` // start | progress | done | skip | fail | plan
	Message string    `json:"message,omitempty"`
}

// EventFunc receives events; it must not block for long.
type EventFunc func(Event)

// State is what stages share during a build.
type State struct {
	// Lock is the current lock; stages may update it (fetch records checksums) and
	// the runner writes it back after each stage.
	Lock   *site.Lock
	Config *site.Config
	DryRun bool
	// Emit reports progress of the running stage.
	Emit func(msg string)
	// Verified is the verify stage's hand-off: the digest it checked for each image it
	// verified (site.ImageRef.Key -> digest). nil when verify was not part of the build;
	// mirror then mirrors what the lock pins (or resolves what it does not).
	Verified map[string]string
	// Stale names stages left out of this build whose earlier result for the same lock
	// no longer holds (a verified tag moved): stages that depend on them refuse to run.
	Stale []string

	restored []string // unselected stages whose earlier result was looked at
}

// StageFunc runs one stage. It returns a JSON-marshalable summary for the report
// (digests, checksums, volume IDs, counts). In a dry run it must stop before the first
// mutation and return what it would do.
type StageFunc func(ctx context.Context, st *State) (any, error)

// ResumeFunc decides whether what an earlier run of a stage recorded (its summary in
// the report) still holds, restoring into st what later stages need from it. It runs
// only when the runner would skip the stage as done for the same lock; false makes the
// stage run again. Reports and journals are hints: a stage whose result depends on
// something outside the lock (a tag) re-checks it here.
type ResumeFunc func(ctx context.Context, st *State, prev json.RawMessage) bool

// Stage is a named stage implementation.
type Stage struct {
	Name string
	Run  StageFunc
	// Resume, when set, is asked before the stage is skipped (see ResumeFunc).
	Resume ResumeFunc
}

// StageRecord is one stage in the build report.
type StageRecord struct {
	Name       string          `json:"name"`
	Status     string          `json:"status"`
	Started    *time.Time      `json:"started,omitempty"`
	DurationMS int64           `json:"duration_ms"`
	Summary    json.RawMessage `json:"summary,omitempty"`
	Error      string          `json:"error,omitempty"`
}

// Report is the build report (--report build.json): everything a build did.
type Report struct {
	Schema string `json:"schema"`
	Talos  string `json:"talos"`
	// LockDigest identifies the resolved inputs: a later run resumes only a report whose
	// digest matches, so a changed lock rebuilds everything.
	LockDigest string        `json:"lock_digest"`
	DryRun     bool          `json:"dry_run"`
	Stages     []StageRecord `json:"stages"`
	Lock       *site.Lock    `json:"lock,omitempty"`
}

// Runner runs stages.
type Runner struct {
	stages     map[string]StageFunc
	resumes    map[string]ResumeFunc
	events     EventFunc
	reportPath string
	lockPath   string
	now        func() time.Time
}

// Option configures a Runner.
type Option func(*Runner)

// WithEvents sets the progress sink.
func WithEvents(f EventFunc) Option { return func(r *Runner) { r.events = f } }

// WithReport makes the runner record its report at path after every stage, and resume
// from the report found there.
func WithReport(path string) Option { return func(r *Runner) { r.reportPath = path } }

// WithLockFile makes the runner write the lock back to path after each stage that
// changed it (e.g. fetch recording checksums).
func WithLockFile(path string) Option { return func(r *Runner) { r.lockPath = path } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(r *Runner) { r.now = now } }

// New builds a runner from stage implementations; a stage may appear at most once and
// must be one of Order.
func New(stages []Stage, opts ...Option) (*Runner, error) {
	r := &Runner{stages: map[string]StageFunc{}, resumes: map[string]ResumeFunc{}, events: func(Event) {}, now: time.Now}
	for _, s := range stages {
		if !slices.Contains(Order, s.Name) {
			return nil, fmt.Errorf("unknown stage %q", s.Name)
		}
		if _, dup := r.stages[s.Name]; dup {
			return nil, fmt.Errorf("stage %q given twice", s.Name)
		}
		r.stages[s.Name] = s.Run
		if s.Resume != nil {
			r.resumes[s.Name] = s.Resume
		}
	}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// ParseStages parses a --stages list ("resolve,fetch"); empty means all, in order.
func ParseStages(list []string) ([]string, error) {
	if len(list) == 0 {
		return slices.Clone(Order), nil
	}
	var out []string
	for _, s := range list {
		s = strings.TrimSpace(s)
		if !slices.Contains(Order, s) {
			return nil, fail.Usage(fmt.Errorf("unknown stage %q: stages are %s", s, strings.Join(Order, ",")))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return slices.Index(Order, a) - slices.Index(Order, b) })
	return out, nil
}

// Run runs the selected stages in order over st. The resolve stage (when selected)
// must set st.Lock; every other stage needs it. It returns the report even on error.
func (r *Runner) Run(ctx context.Context, selected []string, st *State) (*Report, error) {
	rep := &Report{Schema: ReportSchema, DryRun: st.DryRun}
	prev := r.previous()
	var runErr error
	for _, name := range selected {
		rec := StageRecord{Name: name, Status: StatusPending}
		if runErr != nil {
			rep.Stages = append(rep.Stages, rec)
			continue
		}
		run, ok := r.stages[name]
		if !ok {
			runErr = fail.Usage(fmt.Errorf("stage %s is not available in this build", name))
			rec.Status, rec.Error = StatusFailed, runErr.Error()
			rep.Stages = append(rep.Stages, rec)
			continue
		}
		if name != StageResolve && st.Lock == nil {
			runErr = fail.Usage(fmt.Errorf("stage %s needs a lock: run the resolve stage or pass --lock", name))
			rec.Status, rec.Error = StatusFailed, runErr.Error()
			rep.Stages = append(rep.Stages, rec)
			continue
		}
		// A stage finished by an earlier run for the same lock is not redone.
		if name != StageResolve && !st.DryRun && prev != nil {
			if digest, _ := lockDigest(st.Lock); digest == prev.LockDigest {
				if old := prev.stage(name); old != nil && (old.Status == StatusDone || old.Status == StatusSkipped) && r.stillHolds(ctx, name, st, old) {
					rec = *old
					rec.Status = StatusSkipped
					r.emit(name, "skip", "already done for this lock")
					// What a skipped stage recorded (fetch: the artifacts) must survive a
					// lock file that was lost or is given at another path.
					if restoreArtifacts(st.Lock, prev.Lock) && r.lockPath != "" {
						if werr := site.WriteLock(r.lockPath, st.Lock); werr != nil {
							runErr = werr
						}
					}
					rep.Stages = append(rep.Stages, rec)
					continue
				}
			}
		}
		r.restoreUnselected(ctx, name, selected, st, prev)
		start := r.now()
		rec.Started = &start
		kind := "start"
		if st.DryRun {
			kind = "plan"
		}
		r.emit(name, kind, "")
		st.Emit = func(msg string) { r.emit(name, "progress", msg) }
		before := lockBytes(st.Lock)
		summary, err := run(ctx, st)
		rec.DurationMS = r.now().Sub(start).Milliseconds()
		if summary != nil {
			if raw, mErr := json.Marshal(summary); mErr == nil {
				rec.Summary = raw
			}
		}
		if err != nil {
			rec.Status, rec.Error = StatusFailed, err.Error()
			r.emit(name, "fail", err.Error())
			runErr = fmt.Errorf("stage %s: %w", name, err)
		} else {
			rec.Status = StatusDone
			if st.DryRun {
				rec.Status = StatusPlanned
			}
			r.emit(name, "done", fmt.Sprintf("%dms", rec.DurationMS))
			if after := lockBytes(st.Lock); after != before && st.Lock != nil && r.lockPath != "" && !st.DryRun {
				if werr := site.WriteLock(r.lockPath, st.Lock); werr != nil {
					runErr = werr
				}
			}
		}
		rep.Stages = append(rep.Stages, rec)
		if st.Lock != nil {
			// The lock goes into every write of the report, so that a run killed
			// later still leaves what the finished stages recorded.
			rep.Lock = st.Lock
			rep.Talos = st.Lock.Talos
			rep.LockDigest, _ = lockDigest(st.Lock)
		}
		if werr := r.writeReport(rep, st); werr != nil && runErr == nil {
			runErr = werr
		}
	}
	if st.Lock != nil {
		rep.Lock = st.Lock
		rep.Talos = st.Lock.Talos
		rep.LockDigest, _ = lockDigest(st.Lock)
	}
	if werr := r.writeReport(rep, st); werr != nil && runErr == nil {
		runErr = werr
	}
	return rep, runErr
}

// restoreUnselected gives a stage about to run what earlier stages left out of this
// build recorded for the same lock (e.g. `--stages mirror` after a build that verified):
// their ResumeFuncs restore it if it still holds; otherwise the stage is named in
// st.Stale, so a stage that depends on it refuses rather than act on unchecked data.
func (r *Runner) restoreUnselected(ctx context.Context, name string, selected []string, st *State, prev *Report) {
	if prev == nil || st.DryRun {
		return
	}
	digest, _ := lockDigest(st.Lock)
	if digest != prev.LockDigest {
		return
	}
	for _, earlier := range Order[:slices.Index(Order, name)] {
		if slices.Contains(selected, earlier) || slices.Contains(st.restored, earlier) {
			continue
		}
		old := prev.stage(earlier)
		if _, ok := r.resumes[earlier]; !ok || old == nil || (old.Status != StatusDone && old.Status != StatusSkipped) {
			continue
		}
		st.restored = append(st.restored, earlier)
		if !r.stillHolds(ctx, earlier, st, old) {
			st.Stale = append(st.Stale, earlier)
		}
	}
}

// stillHolds asks the stage's ResumeFunc, if any, whether its earlier result holds.
func (r *Runner) stillHolds(ctx context.Context, name string, st *State, old *StageRecord) bool {
	resume, ok := r.resumes[name]
	if !ok {
		return true
	}
	st.Emit = func(msg string) { r.emit(name, "progress", msg) }
	return resume(ctx, st, old.Summary)
}

func (r *Runner) emit(stage, kind, msg string) {
	r.events(Event{Time: r.now(), Stage: stage, Kind: kind, Message: msg})
}

func (r *Runner) writeReport(rep *Report, st *State) error {
	if r.reportPath == "" || st.DryRun {
		return nil
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding build report: %w", err)
	}
	return site.WriteFileAtomic(r.reportPath, append(data, '\n'), 0o644)
}

// previous reads the report of an earlier run, if any; an unreadable one is ignored
// (the build then redoes everything, which is safe because stages are idempotent).
func (r *Runner) previous() *Report {
	if r.reportPath == "" {
		return nil
	}
	data, err := os.ReadFile(r.reportPath)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.emit("build", "progress", "ignoring unreadable report: "+err.Error())
		}
		return nil
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil || rep.Schema != ReportSchema {
		r.emit("build", "progress", "ignoring report in an unknown format")
		return nil
	}
	return &rep
}

func (rep *Report) stage(name string) *StageRecord {
	for i := range rep.Stages {
		if rep.Stages[i].Name == name {
			return &rep.Stages[i]
		}
	}
	return nil
}

// lockDigest identifies a lock's resolved content, ignoring what stages record into it
// (artifacts), so that recording checksums does not invalidate the resume.
func lockDigest(l *site.Lock) (string, error) {
	if l == nil {
		return "", nil
	}
	c := *l
	c.Profiles = make([]site.Profile, len(l.Profiles))
	for i, p := range l.Profiles {
		p.Artifacts = nil
		c.Profiles[i] = p
	}
	data, err := site.MarshalLock(&c)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// restoreArtifacts copies into dst's profiles that have no artifacts the ones src
// recorded, when both locks are the same resolution. It reports whether dst changed.
func restoreArtifacts(dst, src *site.Lock) bool {
	if dst == nil || src == nil {
		return false
	}
	dd, _ := lockDigest(dst)
	sd, _ := lockDigest(src)
	if dd != sd {
		return false
	}
	changed := false
	for i := range dst.Profiles {
		p := &dst.Profiles[i]
		if len(p.Artifacts) > 0 {
			continue
		}
		if old, ok := src.Profile(p.Name); ok && len(old.Artifacts) > 0 {
			p.Artifacts = slices.Clone(old.Artifacts)
			changed = true
		}
	}
	return changed
}

func lockBytes(l *site.Lock) string {
	if l == nil {
		return ""
	}
	data, _ := site.MarshalLock(l)
	return string(data)
}
