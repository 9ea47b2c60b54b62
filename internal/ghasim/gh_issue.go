package ghasim

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

func (s *GHState) issueList(a ghArgs, w io.Writer) error {
	n := 0
	for _, is := range slices.Backward(s.Issues) {
		if n >= limit(a) || !stateMatches(a.get("--state"), is.State) {
			continue
		}
		if !hasLabels(is.Labels, a.vals["--label"]) || !searchMatches(a.get("--search"), is.Title, is.Body) {
			continue
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", is.Number, is.State, is.Title, strings.Join(is.Labels, ", "))
		n++
	}
	return nil
}

func (s *GHState) issueCreate(a ghArgs, stdin io.Reader, w io.Writer) error {
	title := a.get("--title")
	if title == "" {
		return fmt.Errorf("issue create: --title is required when not running interactively")
	}
	text, ok, err := body(a, stdin)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("issue create: --body or --body-file is required when not running interactively")
	}
	is := &GHIssue{Number: s.next(), Title: title, Body: text, State: "OPEN", Labels: splitLabels(a.vals["--label"])}
	s.Issues = append(s.Issues, is)
	fmt.Fprintf(w, "https://github.com/ghasim/repo/issues/%d\n", is.Number)
	return nil
}

func (s *GHState) findIssue(a ghArgs) (*GHIssue, error) {
	if len(a.pos) != 1 {
		return nil, fmt.Errorf("expected one issue number, got %q", a.pos)
	}
	ref := a.pos[0]
	n, err := strconv.Atoi(ref[strings.LastIndex(ref, "/")+1:])
	if err != nil {
		return nil, fmt.Errorf("invalid issue format: %q", ref)
	}
	for _, is := range s.Issues {
		if is.Number == n {
			return is, nil
		}
	}
	return nil, fmt.Errorf("could not resolve to an issue with the number of %d", n)
}

func (s *GHState) issueEdit(a ghArgs, stdin io.Reader) error {
	is, err := s.findIssue(a)
	if err != nil {
		return err
	}
	text, ok, err := body(a, stdin)
	if err != nil {
		return err
	}
	if ok {
		is.Body = text
	}
	if t := a.get("--title"); t != "" {
		is.Title = t
	}
	is.Labels = editLabels(is.Labels, a)
	return nil
}

func (s *GHState) issueComment(a ghArgs, stdin io.Reader) error {
	is, err := s.findIssue(a)
	if err != nil {
		return err
	}
	text, ok, err := body(a, stdin)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("issue comment: --body or --body-file is required when not running interactively")
	}
	is.Comments = append(is.Comments, text)
	return nil
}

func (s *GHState) issueClose(a ghArgs, _ io.Reader) error {
	is, err := s.findIssue(a)
	if err != nil {
		return err
	}
	if c := a.get("--comment"); c != "" {
		is.Comments = append(is.Comments, c)
	}
	is.State, is.Reason = "CLOSED", a.get("--reason")
	return nil
}

func (s *GHState) issueReopen(a ghArgs) error {
	is, err := s.findIssue(a)
	if err != nil {
		return err
	}
	is.State, is.Reason = "OPEN", ""
	return nil
}

// issueView prints gh's non-TTY view: title, state, number, labels lines, "--", body.
func (s *GHState) issueView(a ghArgs, w io.Writer) error {
	is, err := s.findIssue(a)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "title:\t%s\nstate:\t%s\nnumber:\t%d\nlabels:\t%s\n--\n%s\n", is.Title, is.State, is.Number, strings.Join(is.Labels, ", "), is.Body)
	return nil
}
