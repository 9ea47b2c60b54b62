package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/pipeline/check"
)

func (a *app) newCheckIssueCmd() *cobra.Command {
	var report, label, title, gh string
	cmd := &cobra.Command{
		Use:   "issue",
		Short: "Open, update or close the GitHub drift issue from a check report (uses gh)",
		Long: `issue reads a report written by ` + "`imgpipe check -o json`" + ` and keeps one GitHub issue
(labelled imgpipe-drift) in step with it, through the gh CLI (GH_TOKEN in the
environment): a report that is not clean opens the issue, or replaces the open
one's body with the new report and comments; the first clean report closes it.
The scheduled workflow .github/workflows/check.yml runs it after every check.`,
		Example: `  imgpipe check -o json > check.json; imgpipe check issue --report check.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if report == "" {
				return usageErrorf("check issue: --report FILE is required (write it with imgpipe check -o json)")
			}
			rep, err := readCheckReport(report)
			if err != nil {
				return err
			}
			return a.syncIssue(cmd.Context(), ghRunner{bin: gh}, rep, label, title)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&report, "report", "", "check report (imgpipe check -o json) to act on")
	fl.StringVar(&label, "label", check.IssueLabel, "label that marks the drift issue")
	fl.StringVar(&title, "title", check.IssueTitle, "title of a newly opened drift issue")
	fl.StringVar(&gh, "gh", "gh", "the gh CLI to call")
	return cmd
}

func readCheckReport(path string) (*check.Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fail.Usage(fmt.Errorf("reading check report: %w", err))
	}
	var rep check.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return nil, fail.Usage(fmt.Errorf("%s: not a check report: %w", path, err))
	}
	if rep.Schema != check.Schema {
		return nil, fail.Usage(fmt.Errorf("%s: schema %q is not %q: write it with imgpipe check -o json", path, rep.Schema, check.Schema))
	}
	return &rep, nil
}

// ghRunner runs the gh CLI.
type ghRunner struct{ bin string }

func (g ghRunner) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, g.bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("gh %s: %w: %s", args[0]+" "+args[1], err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// syncIssue brings the drift issue in line with the report (check.PlanIssue decides).
func (a *app) syncIssue(ctx context.Context, gh ghRunner, rep *check.Report, label, title string) error {
	out, err := gh.run(ctx, "issue", "list", "--state", "open", "--label", label, "--limit", "20")
	if err != nil {
		return err
	}
	open, err := check.ParseIssueList(out)
	if err != nil {
		return err
	}
	plan := check.PlanIssue(rep, open)
	var body string
	if plan.Action == check.IssueOpen || plan.Action == check.IssueUpdate {
		var b bytes.Buffer
		if err := checkMarkdown(&b, rep); err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "imgpipe-issue-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		body = filepath.Join(dir, "body.md")
		if err := os.WriteFile(body, b.Bytes(), 0o600); err != nil {
			return err
		}
	}
	switch plan.Action {
	case check.IssueOpen:
		// Best effort: the label must exist before an issue can carry it.
		_, _ = gh.run(ctx, "label", "create", label, "--force", "--description", "imgpipe check found drift")
		url, err := gh.run(ctx, "issue", "create", "--title", title, "--label", label, "--body-file", body)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "opened %s\n", strings.TrimSpace(url))
	case check.IssueUpdate:
		n := fmt.Sprint(plan.Number)
		if _, err := gh.run(ctx, "issue", "edit", n, "--body-file", body); err != nil {
			return err
		}
		if _, err := gh.run(ctx, "issue", "comment", n, "--body", plan.Comment); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "updated issue #%d\n", plan.Number)
	case check.IssueClose:
		if _, err := gh.run(ctx, "issue", "close", fmt.Sprint(plan.Number), "--comment", plan.Comment); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "closed issue #%d\n", plan.Number)
	default:
		fmt.Fprintln(a.stdout, "site clean; no drift issue open")
	}
	return nil
}
