package ghasim

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

func (s *GHState) prList(a ghArgs, w io.Writer) error {
	n := 0
	for _, p := range slices.Backward(s.PRs) {
		if n >= limit(a) || !stateMatches(a.get("--state"), p.State) {
			continue
		}
		if h := a.get("--head"); h != "" && h != p.Head {
			continue
		}
		if b := a.get("--base"); b != "" && b != p.Base {
			continue
		}
		if !hasLabels(p.Labels, a.vals["--label"]) || !searchMatches(a.get("--search"), p.Title, p.Body) {
			continue
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", p.Number, p.Title, p.Head, p.State)
		n++
	}
	return nil
}

func (s *GHState) prCreate(a ghArgs, stdin io.Reader, w io.Writer) error {
	head, base, title := a.get("--head"), a.get("--base"), a.get("--title")
	if head == "" || title == "" {
		return fmt.Errorf("pr create: --head and --title are required by the fake (got head %q, title %q)", head, title)
	}
	if base == "" {
		base = "main"
	}
	text, ok, err := body(a, stdin)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("pr create: --body or --body-file is required when not running interactively")
	}
	for _, p := range s.PRs {
		if p.State == "OPEN" && p.Head == head && p.Base == base {
			return fmt.Errorf("a pull request for branch %q into branch %q already exists:\nhttps://github.com/ghasim/repo/pull/%d", head, base, p.Number)
		}
	}
	p := &GHPR{Number: s.next(), Title: title, Body: text, Head: head, Base: base, State: "OPEN", Labels: splitLabels(a.vals["--label"])}
	s.PRs = append(s.PRs, p)
	fmt.Fprintf(w, "https://github.com/ghasim/repo/pull/%d\n", p.Number)
	return nil
}

func (s *GHState) next() int {
	if s.Next < 1 {
		s.Next = 1
	}
	n := s.Next
	s.Next++
	return n
}

// findPR takes a number, a URL ending in the number, or a head branch name.
func (s *GHState) findPR(a ghArgs) (*GHPR, error) {
	if len(a.pos) != 1 {
		return nil, fmt.Errorf("expected one pull request number or branch, got %q", a.pos)
	}
	ref := a.pos[0]
	n, err := strconv.Atoi(ref[strings.LastIndex(ref, "/")+1:])
	for _, p := range slices.Backward(s.PRs) {
		if (err == nil && p.Number == n) || (err != nil && p.Head == ref && p.State == "OPEN") {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no pull requests found for %q", ref)
}

func (s *GHState) prEdit(a ghArgs, stdin io.Reader) error {
	p, err := s.findPR(a)
	if err != nil {
		return err
	}
	text, ok, err := body(a, stdin)
	if err != nil {
		return err
	}
	if ok {
		p.Body = text
	}
	if t := a.get("--title"); t != "" {
		p.Title = t
	}
	if b := a.get("--base"); b != "" {
		p.Base = b
	}
	p.Labels = editLabels(p.Labels, a)
	p.Edits++
	return nil
}

func editLabels(have []string, a ghArgs) []string {
	for _, l := range splitLabels(a.vals["--add-label"]) {
		if !slices.Contains(have, l) {
			have = append(have, l)
		}
	}
	for _, l := range splitLabels(a.vals["--remove-label"]) {
		have = slices.DeleteFunc(have, func(x string) bool { return x == l })
	}
	return have
}

func (s *GHState) prSetState(a ghArgs, state string) error {
	p, err := s.findPR(a)
	if err != nil {
		return err
	}
	p.State = state
	return nil
}

// prView prints gh's non-TTY view: title, state, number, head lines, "--", body.
func (s *GHState) prView(a ghArgs, w io.Writer) error {
	p, err := s.findPR(a)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "title:\t%s\nstate:\t%s\nnumber:\t%d\nhead:\t%s\n--\n%s\n", p.Title, p.State, p.Number, p.Head, p.Body)
	return nil
}
