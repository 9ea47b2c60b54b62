package check

import (
	"fmt"
	"strconv"
	"strings"
)

// IssueLabel marks the one GitHub issue the scheduled check keeps.
const IssueLabel = "imgpipe-drift"

// IssueTitle is the title of that issue.
const IssueTitle = "imgpipe check: the site has drifted from the lock"

// Issue actions.
const (
	IssueNone   = "none"   // clean, and no issue open
	IssueOpen   = "open"   // drift (or incomplete), no issue open
	IssueUpdate = "update" // drift (or incomplete) lasts: the open issue's body is replaced
	IssueClose  = "close"  // clean again: the open issue is closed
)

// IssuePlan is what to do with the drift issue after a check.
type IssuePlan struct {
	Action string
	// Number is the open issue acted on (update, close).
	Number int
	// Comment accompanies an update or a close.
	Comment string
}

// PlanIssue decides from a check report and the open drift issues (numbers, newest
// first) what to do: one issue is open while the site is not clean, updated each run,
// closed by the first clean run. Extra open issues (someone reopened an old one) are
// left alone; the newest is the one kept.
func PlanIssue(rep *Report, open []int) IssuePlan {
	clean := rep.Result == ResultClean
	switch {
	case clean && len(open) == 0:
		return IssuePlan{Action: IssueNone}
	case clean:
		return IssuePlan{Action: IssueClose, Number: open[0],
			Comment: fmt.Sprintf("The site matches lock %s (Talos %s) as of %s: closing.", rep.Lock, rep.Talos, rep.CheckedAt.Format("2006-01-02 15:04 UTC"))}
	case len(open) == 0:
		return IssuePlan{Action: IssueOpen}
	}
	return IssuePlan{Action: IssueUpdate, Number: open[0],
		Comment: fmt.Sprintf("Still %s as of %s: %d drifted, %d unchecked.", rep.Result, rep.CheckedAt.Format("2006-01-02 15:04 UTC"), rep.Totals.Drifted(), rep.Totals.Unchecked)}
}

// ParseIssueList reads the numbers from `gh issue list` plain output (one issue per
// line, the number in the first tab-separated field; gh prints them newest first).
func ParseIssueList(out string) ([]int, error) {
	var nums []int
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f, _, _ := strings.Cut(line, "\t")
		n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(f), "#"))
		if err != nil {
			return nil, fmt.Errorf("gh issue list line %d %q: no issue number", i+1, line)
		}
		nums = append(nums, n)
	}
	return nums, nil
}
