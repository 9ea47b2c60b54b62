package ghasim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// GHStateEnv names the variable that tells the fake gh where its state file is.
const GHStateEnv = "GHASIM_GH_STATE"

// GHStatePath is the fake gh's state file for runs in dir (Options.Dir).
func GHStatePath(dir string) string { return filepath.Join(dir, "gh-state.json") }

// GHState is the fake gh's view of the repository: pull requests, issues (one
// number sequence, as on GitHub) and every call made.
type GHState struct {
	Next   int        `json:"next"`
	PRs    []*GHPR    `json:"prs"`
	Issues []*GHIssue `json:"issues"`
	Calls  [][]string `json:"calls"`
}

// GHPR is a pull request.
type GHPR struct {
	Number int      `json:"number"`
	Title  string   `json:"title"`
	Body   string   `json:"body"`
	Head   string   `json:"head"`
	Base   string   `json:"base"`
	State  string   `json:"state"` // OPEN, CLOSED, MERGED
	Labels []string `json:"labels,omitempty"`
	Edits  int      `json:"edits"`
}

// GHIssue is an issue with its comments.
type GHIssue struct {
	Number   int      `json:"number"`
	Title    string   `json:"title"`
	Body     string   `json:"body"`
	State    string   `json:"state"` // OPEN, CLOSED
	Labels   []string `json:"labels,omitempty"`
	Comments []string `json:"comments,omitempty"`
	Reason   string   `json:"reason,omitempty"`
}

// LoadGHState reads the state of the runs in dir; no file is an empty state.
func LoadGHState(dir string) (*GHState, error) {
	return loadState(GHStatePath(dir))
}

// Save writes the state back (a test may seed PRs/issues or merge a PR with it).
func (s *GHState) Save(dir string) error { return s.save(GHStatePath(dir)) }

// OpenPRs returns the open pull requests.
func (s *GHState) OpenPRs() []*GHPR {
	var out []*GHPR
	for _, p := range s.PRs {
		if p.State == "OPEN" {
			out = append(out, p)
		}
	}
	return out
}

func loadState(path string) (*GHState, error) {
	s := &GHState{Next: 1}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("reading fake gh state %s: %w", path, err)
	}
	return s, nil
}

func (s *GHState) save(path string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// BuildFakeGH compiles the fake gh (./fakegh) into dir/gh and returns its path.
// The Go build cache makes repeated builds cheap.
func BuildFakeGH(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "gh")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/imgpipe/imgpipe/internal/ghasim/fakegh")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the fake gh: %w: %s", err, b)
	}
	return out, nil
}

// GHMain is the fake gh's main: it records the call in the state file named by
// $GHASIM_GH_STATE and acts on it. It returns the exit status.
func GHMain(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	path := getenv(GHStateEnv)
	if path == "" {
		fmt.Fprintf(stderr, "fake gh: %s is not set\n", GHStateEnv)
		return 4
	}
	s, err := loadState(path)
	if err != nil {
		fmt.Fprintln(stderr, "fake gh:", err)
		return 1
	}
	s.Calls = append(s.Calls, slices.Clone(args))
	code := 0
	if getenv("GH_TOKEN") == "" && getenv("GITHUB_TOKEN") == "" {
		// Real gh in Actions refuses to run without a token.
		fmt.Fprintln(stderr, "gh: To use GitHub CLI in a GitHub Actions workflow, set the GH_TOKEN environment variable.")
		code = 4
	} else if err := s.dispatch(args, stdin, stdout); err != nil {
		fmt.Fprintln(stderr, "gh:", err)
		code = 1
	}
	if err := s.save(path); err != nil {
		fmt.Fprintln(stderr, "fake gh:", err)
		return 1
	}
	return code
}

// flagSpec lists a command's flags: value flags and boolean flags, with short forms.
var (
	valueFlags = map[string]string{"-t": "--title", "-b": "--body", "-F": "--body-file", "-B": "--base",
		"-H": "--head", "-l": "--label", "-s": "--state", "-L": "--limit", "-S": "--search", "-R": "--repo",
		"-c": "--comment", "-r": "--reason", "-A": "--author", "-a": "--assignee",
		"--add-label": "--add-label", "--remove-label": "--remove-label", "--milestone": "--milestone"}
	boolFlags = map[string]string{"-d": "--draft", "--fill": "--fill", "-w": "--web"}
)

type ghArgs struct {
	pos   []string
	vals  map[string][]string
	bools map[string]bool
}

func (a ghArgs) get(name string) string {
	v := a.vals[name]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func parseGHArgs(args []string) (ghArgs, error) {
	a := ghArgs{vals: map[string][]string{}, bools: map[string]bool{}}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			a.pos = append(a.pos, arg)
			continue
		}
		name, val, hasVal := strings.Cut(arg, "=")
		if long, ok := boolFlags[name]; ok {
			a.bools[long] = true
			continue
		}
		long, ok := valueFlags[name]
		if !ok && strings.HasPrefix(name, "--") {
			for _, l := range valueFlags {
				if l == name {
					long, ok = name, true
				}
			}
		}
		if !ok {
			return a, fmt.Errorf("unknown flag %s (the fake gh implements no --json/--jq; see ghasim doc)", name)
		}
		if !hasVal {
			if i+1 >= len(args) {
				return a, fmt.Errorf("flag %s needs a value", name)
			}
			i++
			val = args[i]
		}
		a.vals[long] = append(a.vals[long], val)
	}
	return a, nil
}

func (s *GHState) dispatch(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) < 2 {
		return errors.New("usage: gh pr|issue <command> ...")
	}
	a, err := parseGHArgs(args[2:])
	if err != nil {
		return err
	}
	switch args[0] + " " + args[1] {
	case "pr list":
		return s.prList(a, stdout)
	case "pr create":
		return s.prCreate(a, stdin, stdout)
	case "pr edit":
		return s.prEdit(a, stdin)
	case "pr close":
		return s.prSetState(a, "CLOSED")
	case "pr view":
		return s.prView(a, stdout)
	case "issue list":
		return s.issueList(a, stdout)
	case "issue create":
		return s.issueCreate(a, stdin, stdout)
	case "issue edit":
		return s.issueEdit(a, stdin)
	case "issue comment":
		return s.issueComment(a, stdin)
	case "issue close":
		return s.issueClose(a, stdin)
	case "issue reopen":
		return s.issueReopen(a)
	case "issue view":
		return s.issueView(a, stdout)
	}
	return fmt.Errorf("fake gh does not implement %q", args[0]+" "+args[1])
}

// body returns --body or the contents of --body-file ("-" is stdin); ok is false
// when neither was given.
func body(a ghArgs, stdin io.Reader) (text string, ok bool, err error) {
	if f := a.get("--body-file"); f != "" {
		var data []byte
		if f == "-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(f)
		}
		if err != nil {
			return "", false, fmt.Errorf("reading --body-file: %w", err)
		}
		return string(data), true, nil
	}
	if _, given := a.vals["--body"]; given {
		return a.get("--body"), true, nil
	}
	return "", false, nil
}

func stateMatches(want, have string) bool {
	switch strings.ToLower(want) {
	case "", "open":
		return have == "OPEN"
	case "all":
		return true
	case "closed":
		return have == "CLOSED" || have == "MERGED"
	}
	return strings.EqualFold(want, have)
}

func limit(a ghArgs) int {
	n, err := strconv.Atoi(a.get("--limit"))
	if err != nil || n <= 0 {
		return 30
	}
	return n
}

func hasLabels(have []string, want []string) bool {
	for _, w := range want {
		for _, l := range strings.Split(w, ",") {
			if !slices.Contains(have, strings.TrimSpace(l)) {
				return false
			}
		}
	}
	return true
}

func splitLabels(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, l := range strings.Split(v, ",") {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	return out
}

// searchMatches is a plain-text match on title and body; qualifiers (words with
// a colon, like is:open or in:title) are ignored.
func searchMatches(query, title, body string) bool {
	hay := strings.ToLower(title + "\n" + body)
	for _, w := range strings.Fields(strings.ToLower(query)) {
		if strings.Contains(w, ":") {
			continue
		}
		if !strings.Contains(hay, strings.Trim(w, `"`)) {
			return false
		}
	}
	return true
}
