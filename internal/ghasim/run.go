package ghasim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrStepFailed is wrapped by Result.Err when a job failed.
var ErrStepFailed = errors.New("workflow step failed")

// Options say how to run a workflow.
type Options struct {
	// Dir is where the run lives: runners, artifacts, the fake gh state. Required;
	// a test passes t.TempDir(). Runs that share a Dir share the gh state (one
	// repository seen on several days).
	Dir string
	// Remote is the bare git repository actions/checkout clones and `git push` reaches.
	Remote string
	// Event is github.event_name: "schedule" (default), "workflow_dispatch", "push", ...
	Event string
	// Ref is the branch the run is on (default "main").
	Ref string
	// Inputs are workflow_dispatch inputs as typed in the UI (strings).
	Inputs map[string]string
	// Secrets are the secrets context; github.token is "ghasim-token".
	Secrets map[string]string
	// Vars are the vars context (repository/organization variables).
	Vars map[string]string
	// Env is added to every step's environment (after the host's PATH/HOME/Go
	// variables, before workflow/job/step env), e.g. an IMGPIPE_FACTORY_URL that
	// points a workflow at a fake.
	Env map[string]string
	// RunID is github.run_id (default 1). Set it per run to tell days apart.
	RunID int
	// Actions handle `uses:` values beyond the built-in ones; the key is the action
	// without its @version ("org/action").
	Actions map[string]ActionFunc
	// Log receives step output and progress; nil discards it.
	Log io.Writer
}

// ActionFunc runs one `uses:` step. with is already interpolated.
type ActionFunc func(ctx context.Context, sc *StepContext, with map[string]string) error

// StepContext is what an ActionFunc may use.
type StepContext struct {
	Workspace string
	Temp      string
	Env       []string
	// Outputs set here become steps.<id>.outputs.
	Outputs map[string]string
	run     *runState
}

// Result is what one run did.
type Result struct {
	// Jobs by id, with their conclusion and outputs.
	Jobs map[string]*JobResult
	// Order lists the job ids in the order they ran (skipped ones included).
	Order []string
	// Err is non-nil when a job failed (wrapping ErrStepFailed).
	Err error
}

// JobResult is one job's conclusion: "success", "failure" or "skipped".
type JobResult struct {
	Result  string
	Outputs map[string]string
	// Steps by id (only steps that have an id), with outcome and outputs.
	Steps map[string]*StepResult
	// Ran lists the labels of the steps that ran, in order.
	Ran []string
}

// StepResult is one step's outcome ("success", "failure", "skipped") and outputs.
type StepResult struct {
	Outcome string
	Outputs map[string]string
}

type runState struct {
	opts      Options
	wf        *Workflow
	artifacts string
	bin       string
	inputs    map[string]any
	log       io.Writer
}

// Run executes the workflow's jobs in dependency order, as one GitHub run would.
// It returns an error for a problem with the emulation itself (bad workflow,
// invalid inputs, missing fake gh); a failing job is reported in Result.Err.
func Run(ctx context.Context, wf *Workflow, opts Options) (*Result, error) {
	rs, err := newRunState(ctx, wf, opts)
	if err != nil {
		return nil, err
	}
	jobs, err := wf.order()
	if err != nil {
		return nil, err
	}
	res := &Result{Jobs: map[string]*JobResult{}}
	for _, j := range jobs {
		jr, err := rs.runJob(ctx, j, res.Jobs)
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", j.ID, err)
		}
		res.Jobs[j.ID] = jr
		res.Order = append(res.Order, j.ID)
		if jr.Result == "failure" && res.Err == nil {
			res.Err = fmt.Errorf("job %s: %w", j.ID, ErrStepFailed)
		}
	}
	return res, nil
}

func newRunState(ctx context.Context, wf *Workflow, opts Options) (*runState, error) {
	if opts.Dir == "" {
		return nil, errors.New("ghasim: Options.Dir is required")
	}
	if opts.Event == "" {
		opts.Event = "schedule"
	}
	if opts.Ref == "" {
		opts.Ref = "main"
	}
	if opts.RunID == 0 {
		opts.RunID = 1
	}
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	inputs, err := typedInputs(wf, opts)
	if err != nil {
		return nil, err
	}
	rs := &runState{opts: opts, wf: wf, inputs: inputs, log: log,
		artifacts: filepath.Join(opts.Dir, "runs", strconv.Itoa(opts.RunID), "artifacts"),
		bin:       filepath.Join(opts.Dir, "bin")}
	if err := os.MkdirAll(rs.artifacts, 0o755); err != nil {
		return nil, err
	}
	if _, err := BuildFakeGH(ctx, rs.bin); err != nil {
		return nil, err
	}
	return rs, nil
}

// typedInputs applies defaults and types to the dispatch inputs, as GitHub does
// for the inputs context (booleans are booleans there, strings in github.event.inputs).
func typedInputs(wf *Workflow, opts Options) (map[string]any, error) {
	out := map[string]any{}
	for name, v := range opts.Inputs {
		if _, ok := wf.Inputs[name]; !ok {
			return nil, fmt.Errorf("ghasim: workflow has no input %q", name)
		}
		out[name] = v
	}
	for name, in := range wf.Inputs {
		v, given := opts.Inputs[name]
		if !given {
			if opts.Event != "workflow_dispatch" && opts.Event != "workflow_call" {
				continue // schedule/push runs have an empty inputs context
			}
			if in.Required && in.Default == "" {
				return nil, fmt.Errorf("ghasim: input %q is required", name)
			}
			v = in.Default
		}
		switch in.Type {
		case "boolean":
			if v != "true" && v != "false" && v != "" {
				return nil, fmt.Errorf("ghasim: input %q is a boolean, got %q", name, v)
			}
			out[name] = v == "true"
		case "choice":
			if !slices.Contains(in.Options, v) {
				return nil, fmt.Errorf("ghasim: input %q must be one of %v, got %q", name, in.Options, v)
			}
			out[name] = v
		default:
			out[name] = v
		}
	}
	return out, nil
}

func (rs *runState) githubContext(workspace string) map[string]any {
	evInputs := map[string]any{}
	if rs.opts.Event == "workflow_dispatch" {
		for k, v := range rs.inputs {
			evInputs[k] = toString(v)
		}
	}
	return map[string]any{
		"event_name": rs.opts.Event,
		"event":      map[string]any{"inputs": evInputs},
		"ref":        "refs/heads/" + rs.opts.Ref,
		"ref_name":   rs.opts.Ref,
		"run_id":     strconv.Itoa(rs.opts.RunID),
		"repository": "ghasim/repo",
		"workspace":  workspace,
		"token":      "ghasim-token",
		"actor":      "ghasim",
	}
}

// runJob decides whether the job runs (needs, if:) and runs its steps on a fresh runner.
func (rs *runState) runJob(ctx context.Context, j *Job, done map[string]*JobResult) (*JobResult, error) {
	needs := map[string]any{}
	status := "success"
	for _, n := range j.Needs {
		d := done[n]
		needs[n] = map[string]any{"result": d.Result, "outputs": anyMap(d.Outputs)}
		if d.Result != "success" {
			status = "failure"
		}
	}
	// GitHub's layout: the workspace and RUNNER_TEMP share the parent "work"
	// directory, which is what upload-artifact's common-ancestor rule sees. Like a
	// hosted runner, every job gets the same paths, emptied first (so Go's build
	// cache also hits across jobs and runs).
	ws := filepath.Join(rs.opts.Dir, "work", "repo", "repo")
	temp := filepath.Join(rs.opts.Dir, "work", "_temp")
	ec := &exprCtx{status: status, contexts: map[string]any{
		"github":  rs.githubContext(ws),
		"inputs":  rs.inputs,
		"secrets": anyMap(rs.opts.Secrets),
		"needs":   needs,
		"runner":  map[string]any{"temp": temp, "os": "Linux", "arch": "X64", "name": "ghasim"},
		"env":     anyMap(rs.wf.Env),
		"vars":    anyMap(rs.opts.Vars),
	}}
	ok, err := ec.Condition(j.If)
	if err != nil {
		return nil, fmt.Errorf("if: %w", err)
	}
	if !ok {
		fmt.Fprintf(rs.log, "== job %s: skipped\n", j.ID)
		return &JobResult{Result: "skipped", Outputs: map[string]string{}, Steps: map[string]*StepResult{}}, nil
	}
	for _, d := range []string{ws, temp} {
		if err := os.RemoveAll(d); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	// In a job's if:, success() means every need succeeded; in its steps it means
	// every previous step did, so a job run by always() starts its steps clean.
	ec.status = "success"
	fmt.Fprintf(rs.log, "== job %s\n", j.ID)
	jr := &JobResult{Result: "success", Outputs: map[string]string{}, Steps: map[string]*StepResult{}}
	jc := &jobRun{rs: rs, job: j, ws: ws, temp: temp, ec: ec, jr: jr, env: map[string]string{}}
	if err := jc.steps(ctx); err != nil {
		return nil, err
	}
	for name, expr := range j.Outputs {
		v, err := ec.Interpolate(expr)
		if err != nil {
			return nil, fmt.Errorf("outputs.%s: %w", name, err)
		}
		jr.Outputs[name] = v
	}
	return jr, nil
}

type jobRun struct {
	rs       *runState
	job      *Job
	ws, temp string
	ec       *exprCtx
	jr       *JobResult
	env      map[string]string // from GITHUB_ENV
	path     []string          // from GITHUB_PATH, newest first
	n        int
}

func (jc *jobRun) steps(ctx context.Context) error {
	stepsCtx := map[string]any{}
	jc.ec.contexts["steps"] = stepsCtx
	for i, s := range jc.job.Steps {
		jc.ec.contexts["env"] = anyMap(jc.envMap(s, false))
		ok, err := jc.ec.Condition(s.If)
		if err != nil {
			return fmt.Errorf("%s: if: %w", s.label(i), err)
		}
		sr := &StepResult{Outcome: "skipped", Outputs: map[string]string{}}
		if ok {
			jc.jr.Ran = append(jc.jr.Ran, s.label(i))
			if err := jc.step(ctx, i, s, sr); err != nil {
				return err
			}
		}
		conclusion := sr.Outcome
		if sr.Outcome == "failure" {
			if s.ContinueOnError {
				conclusion = "success"
			} else {
				jc.jr.Result, jc.ec.status = "failure", "failure"
			}
		}
		if s.ID != "" {
			jc.jr.Steps[s.ID] = sr
			stepsCtx[s.ID] = map[string]any{"outcome": sr.Outcome, "conclusion": conclusion, "outputs": anyMap(sr.Outputs)}
		}
	}
	return nil
}

// step runs one step and records its outcome; an error is an emulation problem.
func (jc *jobRun) step(ctx context.Context, i int, s Step, sr *StepResult) error {
	jc.n++
	fmt.Fprintf(jc.rs.log, "-- %s\n", s.label(i))
	files, err := jc.stepFiles()
	if err != nil {
		return err
	}
	env, err := jc.interpolateMap(jc.envMap(s, true))
	if err != nil {
		return fmt.Errorf("%s: env: %w", s.label(i), err)
	}
	environ := jc.environ(env, files)
	var stepErr error
	if s.Run != "" {
		stepErr = jc.runScript(ctx, s, environ)
	} else {
		stepErr = jc.uses(ctx, s, environ, sr)
		if stepErr != nil && !errors.Is(stepErr, ErrStepFailed) {
			return fmt.Errorf("%s: %w", s.label(i), stepErr)
		}
	}
	sr.Outcome = "success"
	if stepErr != nil {
		fmt.Fprintf(jc.rs.log, "   step failed: %v\n", stepErr)
		sr.Outcome = "failure"
	}
	return jc.collect(files, sr)
}

type stepFiles struct{ output, env, path, summary string }

func (jc *jobRun) stepFiles() (stepFiles, error) {
	dir := filepath.Join(jc.temp, "_runner_file_commands")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return stepFiles{}, err
	}
	n := strconv.Itoa(jc.n)
	f := stepFiles{output: filepath.Join(dir, "set_output_"+n), env: filepath.Join(dir, "set_env_"+n),
		path: filepath.Join(dir, "add_path_"+n), summary: filepath.Join(dir, "step_summary_"+n)}
	for _, p := range []string{f.output, f.env, f.path, f.summary} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return stepFiles{}, err
		}
	}
	return f, nil
}

// envMap merges workflow, job, GITHUB_ENV and step env (later wins). raw keeps
// ${{ }} for the caller to interpolate.
func (jc *jobRun) envMap(s Step, raw bool) map[string]string {
	m := map[string]string{}
	maps.Copy(m, jc.rs.wf.Env)
	maps.Copy(m, jc.job.Env)
	maps.Copy(m, jc.env)
	if raw {
		maps.Copy(m, s.Env)
	}
	return m
}

func (jc *jobRun) interpolateMap(in map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(in))
	for k, v := range in {
		s, err := jc.ec.Interpolate(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = s
	}
	return out, nil
}

// hostEnv are the host variables a step inherits: enough for bash, git and go.
var hostEnv = []string{"HOME", "USER", "LANG", "TMPDIR", "GOPATH", "GOCACHE", "GOMODCACHE", "GOROOT",
	"GOPROXY", "GONOSUMDB", "GOFLAGS", "GOTOOLCHAIN", "GOSUMDB", "GOPRIVATE", "GOINSECURE", "SSL_CERT_FILE"}

func (jc *jobRun) environ(stepEnv map[string]string, f stepFiles) []string {
	m := map[string]string{}
	for _, k := range hostEnv {
		if v, ok := os.LookupEnv(k); ok {
			m[k] = v
		}
	}
	path := append([]string{jc.rs.bin}, jc.path...)
	m["PATH"] = strings.Join(append(path, os.Getenv("PATH")), string(os.PathListSeparator))
	maps.Copy(m, jc.rs.opts.Env)
	gh := jc.ec.contexts["github"].(map[string]any)
	maps.Copy(m, map[string]string{
		"CI": "true", "GITHUB_ACTIONS": "true", "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64",
		"RUNNER_TEMP": jc.temp, "GITHUB_WORKSPACE": jc.ws,
		"GITHUB_OUTPUT": f.output, "GITHUB_ENV": f.env, "GITHUB_PATH": f.path, "GITHUB_STEP_SUMMARY": f.summary,
		"GITHUB_EVENT_NAME": jc.rs.opts.Event, "GITHUB_REF": toString(gh["ref"]), "GITHUB_REF_NAME": jc.rs.opts.Ref,
		"GITHUB_RUN_ID": strconv.Itoa(jc.rs.opts.RunID), "GITHUB_REPOSITORY": "ghasim/repo", "GITHUB_JOB": jc.job.ID,
		GHStateEnv: GHStatePath(jc.rs.opts.Dir),
	})
	maps.Copy(m, stepEnv)
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

func (jc *jobRun) runScript(ctx context.Context, s Step, environ []string) error {
	script, err := jc.ec.Interpolate(s.Run)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	file := filepath.Join(jc.temp, fmt.Sprintf("step-%d.sh", jc.n))
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		return err
	}
	var cmd *exec.Cmd
	switch s.Shell {
	case "", "bash":
		// GitHub's default shell on Linux when bash exists.
		cmd = exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-eo", "pipefail", file)
	case "sh":
		cmd = exec.CommandContext(ctx, "sh", "-e", file)
	default:
		return fmt.Errorf("shell %q is not emulated", s.Shell)
	}
	cmd.Dir = jc.ws
	wd := s.WorkingDirectory
	if wd == "" {
		wd = jc.job.WorkingDirectory
	}
	if wd != "" {
		cmd.Dir = filepath.Join(jc.ws, wd)
	}
	cmd.Env = environ
	cmd.Stdout, cmd.Stderr = jc.rs.log, jc.rs.log
	return cmd.Run()
}

// collect applies the step's GITHUB_OUTPUT, GITHUB_ENV and GITHUB_PATH files.
func (jc *jobRun) collect(f stepFiles, sr *StepResult) error {
	outs, err := parseKV(f.output)
	if err != nil {
		return fmt.Errorf("GITHUB_OUTPUT: %w", err)
	}
	maps.Copy(sr.Outputs, outs)
	envs, err := parseKV(f.env)
	if err != nil {
		return fmt.Errorf("GITHUB_ENV: %w", err)
	}
	maps.Copy(jc.env, envs)
	data, err := os.ReadFile(f.path)
	if err != nil {
		return err
	}
	for _, p := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if p != "" {
			jc.path = append([]string{p}, jc.path...)
		}
	}
	return nil
}

// parseKV reads the file-command format: `name=value` lines and
// `name<<DELIM` ... `DELIM` blocks.
func parseKV(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		eq := strings.Index(line, "=")
		hd := strings.Index(line, "<<")
		if hd > 0 && (eq < 0 || hd < eq) {
			name, delim := line[:hd], line[hd+2:]
			var val []string
			closed := false
			for sc.Scan() {
				if sc.Text() == delim {
					closed = true
					break
				}
				val = append(val, sc.Text())
			}
			if !closed {
				return nil, fmt.Errorf("%s: delimiter %q for %s never closed", path, delim, name)
			}
			out[name] = strings.Join(val, "\n")
			continue
		}
		if eq <= 0 {
			return nil, fmt.Errorf("%s: line %q is neither name=value nor name<<DELIM", path, line)
		}
		out[line[:eq]] = line[eq+1:]
	}
	return out, sc.Err()
}

func anyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
