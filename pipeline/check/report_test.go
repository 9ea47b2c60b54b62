package check

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/site"
)

func items(statuses ...Status) func(context.Context) ([]Item, []string, error) {
	return func(context.Context) ([]Item, []string, error) {
		var out []Item
		for i, s := range statuses {
			out = append(out, Item{Kind: "thing", Name: string(rune('a' + i)), Status: s})
		}
		return out, nil, nil
	}
}

func TestRunResult(t *testing.T) {
	t.Parallel()
	lock := &site.Lock{Talos: "v1.12.0"}
	broken := func(context.Context) ([]Item, []string, error) { return nil, nil, errors.New("connection refused") }
	tests := []struct {
		name    string
		sources []Source
		result  string
		code    int
	}{
		{"all ok", []Source{{Name: "a", Run: items(OK, OK)}, Skip("b", "not configured")}, ResultClean, ExitClean},
		{"skipped items are not drift", []Source{{Name: "a", Run: items(OK, Skipped)}}, ResultClean, ExitClean},
		{"one missing", []Source{{Name: "a", Run: items(OK, Missing)}}, ResultDrift, ExitDrift},
		{"stray is drift", []Source{{Name: "a", Run: items(Stray)}}, ResultDrift, ExitDrift},
		{"different is drift", []Source{{Name: "a", Run: items(Different)}}, ResultDrift, ExitDrift},
		{"unchecked wins over drift", []Source{{Name: "a", Run: items(Missing)}, {Name: "b", Run: items(Unchecked)}}, ResultIncomplete, ExitIncomplete},
		{"a check that cannot run is named", []Source{{Name: "a", Run: items(OK)}, {Name: "b", Run: broken}}, ResultIncomplete, ExitIncomplete},
		{"nothing configured is clean", []Source{Skip("a", "x")}, ResultClean, ExitClean},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep := Run(context.Background(), lock, "l.json", tt.sources, func() time.Time { return time.Unix(1e9, 0) })
			if rep.Result != tt.result || rep.ExitCode != tt.code {
				t.Errorf("Run(%s) = %s, exit %d; want %s, exit %d", tt.name, rep.Result, rep.ExitCode, tt.result, tt.code)
			}
			if rep.Schema != Schema || rep.Items == nil {
				t.Errorf("Run(%s): schema %q, items %v; want %q and a non-nil list", tt.name, rep.Schema, rep.Items, Schema)
			}
			for _, s := range rep.Checks {
				if s.Error != "" {
					found := false
					for _, it := range rep.Items {
						found = found || (it.Check == s.Name && it.Kind == s.Name && it.Status == Unchecked)
					}
					if !found {
						t.Errorf("Run(%s): check %s failed (%s) but no unchecked item names it", tt.name, s.Name, s.Error)
					}
				}
			}
		})
	}
}

func TestPlanIssue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		result string
		open   []int
		want   string
		number int
	}{
		{ResultClean, nil, IssueNone, 0},
		{ResultClean, []int{7}, IssueClose, 7},
		{ResultDrift, nil, IssueOpen, 0},
		{ResultDrift, []int{9, 4}, IssueUpdate, 9},
		{ResultIncomplete, nil, IssueOpen, 0},
		{ResultIncomplete, []int{3}, IssueUpdate, 3},
	}
	for _, tt := range tests {
		got := PlanIssue(&Report{Result: tt.result}, tt.open)
		if got.Action != tt.want || got.Number != tt.number {
			t.Errorf("PlanIssue(%s, %v) = %s #%d; want %s #%d", tt.result, tt.open, got.Action, got.Number, tt.want, tt.number)
		}
		if (got.Action == IssueClose || got.Action == IssueUpdate) && got.Comment == "" {
			t.Errorf("PlanIssue(%s, %v): no comment", tt.result, tt.open)
		}
	}
}

func TestParseIssueList(t *testing.T) {
	t.Parallel()
	seed, err := os.ReadFile(filepath.Join("testdata", "gh-issue-list.txt"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseIssueList(string(seed))
	if err != nil || len(got) != 2 || got[0] != 12 || got[1] != 3 {
		t.Errorf("ParseIssueList(two lines) = %v, %v; want [12 3]", got, err)
	}
	if got, err := ParseIssueList("\n"); err != nil || len(got) != 0 {
		t.Errorf("ParseIssueList(empty) = %v, %v; want none", got, err)
	}
	if _, err := ParseIssueList("no issues here\n"); err == nil {
		t.Errorf("ParseIssueList(prose) = nil error; want one naming the line")
	}
}

func FuzzParseIssueList(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "gh-issue-list.txt"))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{string(seed), "", "#4\tOPEN\n", "x\ty", "12\n13\n\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		nums, err := ParseIssueList(s)
		if err != nil && nums != nil {
			t.Errorf("ParseIssueList(%q) = %v with error %v; want no numbers with an error", s, nums, err)
		}
		if lines := strings.Count(s, "\n") + 1; err == nil && len(nums) > lines {
			t.Errorf("ParseIssueList(%q) = %d numbers from %d lines", s, len(nums), lines)
		}
	})
}
