package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/site"
)

// RefreshDecision is the scheduled build's decision: whether the site's resolution
// changed against the committed lock, from what to what, and why. It is the JSON
// contract of `imgpipe refresh -o json`; the workflow reads its step outputs.
type RefreshDecision struct {
	// Changed is true when a build is needed: the resolution differs from the
	// committed lock (notes and fetched artifacts aside), there is none, or Forced.
	Changed bool `json:"changed"`
	// First is true when there was no committed lock.
	First    bool   `json:"first"`
	Forced   bool   `json:"forced"`
	OldTalos string `json:"old_talos"`
	NewTalos string `json:"new_talos"`
	// Reasons say what changed, one line each ("Talos v1.13.9 -> v1.13.10", ...).
	Reasons []string `json:"reasons"`
	// PassedOver names newer releases the query matched but resolve did not pick.
	PassedOver []string `json:"passed_over"`
	// MatrixChanges counts the differences matrix refresh found (any release).
	MatrixChanges int `json:"matrix_changes"`
	// MatrixChanged is true when the refreshed matrix file differs from the
	// committed one. It must be committed even without a rebuild: it records each
	// new release's firstSeen, from which a soak period counts, and broken marks.
	MatrixChanged bool `json:"matrix_changed"`
	// Publish is Changed or MatrixChanged: the site's pull request is opened or updated.
	Publish bool `json:"publish"`
	// Branch is the site's one pull-request branch; Title the pull request's title.
	Branch string `json:"branch"`
	Title  string `json:"title"`
	// Drift is the per-profile difference (nil on the first lock).
	Drift *site.Drift `json:"drift,omitempty"`
}

// RefreshInput is what Decide compares.
type RefreshInput struct {
	// Old is the committed lock (nil when none is committed).
	Old *site.Lock
	// New is the site freshly resolved against the refreshed matrix.
	New *site.Lock
	// Report is what matrix refresh changed (may be nil).
	Report *factory.RefreshReport
	// Site names the site for its branch ("imgpipe" for imgpipe.yaml).
	Site  string
	Force bool
	// MatrixChanged says the refreshed matrix differs from the committed file.
	MatrixChanged bool
}

var passedOverRE = regexp.MustCompile(`^passed over Talos (\S+): (.*)$`)

// Decide compares the fresh resolution with the committed lock.
func Decide(in RefreshInput) (*RefreshDecision, error) {
	if in.New == nil {
		return nil, errors.New("deciding a refresh: no resolved lock")
	}
	d := &RefreshDecision{NewTalos: in.New.Talos, Forced: in.Force, Reasons: []string{}, PassedOver: []string{},
		Branch: "imgpipe/refresh-" + slug(in.Site), Title: fmt.Sprintf("imgpipe: Talos %s images built", in.New.Talos)}
	if in.Report != nil {
		d.MatrixChanges = len(in.Report.Changes)
	}
	for _, n := range in.New.Notes {
		if m := passedOverRE.FindStringSubmatch(n); m != nil {
			d.PassedOver = append(d.PassedOver, m[1]+" ("+m[2]+")")
		}
	}
	if in.Old == nil {
		d.Changed, d.First = true, true
		d.Reasons = append(d.Reasons, "no committed lock: first build of this site")
	} else {
		d.OldTalos = in.Old.Talos
		same, err := sameResolution(in.Old, in.New)
		if err != nil {
			return nil, err
		}
		if !same {
			d.Changed = true
			d.Drift = site.Diff(in.Old, in.New)
			d.Reasons = append(d.Reasons, reasons(in.Old, in.New, d.Drift)...)
		}
	}
	if in.Force && !d.Changed {
		d.Changed = true
		d.Reasons = append(d.Reasons, "forced: build although nothing changed")
	}
	d.MatrixChanged = in.MatrixChanged
	d.Publish = d.Changed || d.MatrixChanged
	if !d.Changed {
		d.Title = fmt.Sprintf("imgpipe: matrix refresh (Talos %s unchanged)", in.New.Talos)
	}
	return d, nil
}

// sameResolution compares what a build depends on: everything in the lock except
// notes, fetched artifacts and where the matrix file was.
func sameResolution(a, b *site.Lock) (bool, error) {
	ka, err := resolutionKey(a)
	if err != nil {
		return false, err
	}
	kb, err := resolutionKey(b)
	return bytes.Equal(ka, kb), err
}

func resolutionKey(l *site.Lock) ([]byte, error) {
	c := *l
	c.Notes, c.Matrix = nil, ""
	c.Profiles = make([]site.Profile, len(l.Profiles))
	for i, p := range l.Profiles {
		p.Artifacts, p.Notes = nil, nil
		c.Profiles[i] = p
	}
	return site.MarshalLock(&c)
}

func reasons(old, cur *site.Lock, d *site.Drift) []string {
	var out []string
	if old.Talos != cur.Talos {
		out = append(out, fmt.Sprintf("Talos %s -> %s", old.Talos, cur.Talos))
	}
	if old.Kubernetes.Version != cur.Kubernetes.Version {
		out = append(out, fmt.Sprintf("Kubernetes %s -> %s", old.Kubernetes.Version, cur.Kubernetes.Version))
	}
	for _, p := range d.Profiles {
		switch {
		case p.Status == "added" || p.Status == "removed":
			out = append(out, fmt.Sprintf("profile %s %s", p.Name, p.Status))
		case p.Status == "changed" && p.SchematicFrom != p.SchematicTo:
			out = append(out, fmt.Sprintf("profile %s: schematic %s -> %s", p.Name, short12(p.SchematicFrom), short12(p.SchematicTo)))
		}
		for _, c := range p.Changes {
			out = append(out, fmt.Sprintf("profile %s: %s %s", p.Name, c.Name, changeText(c)))
		}
	}
	if len(out) == 0 {
		out = append(out, "the resolution changed (core images, factory or catalog)")
	}
	return out
}

func changeText(c site.ExtensionChange) string {
	switch c.Change {
	case "added":
		return "added " + c.ToVersion
	case "removed":
		return "removed (was " + c.FromVersion + ")"
	case "digest":
		return "digest " + orUnknown(c.FromDigest) + " -> " + orUnknown(c.ToDigest)
	}
	return c.Change + " " + c.FromVersion + " -> " + c.ToVersion
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func short12(s string) string { return s[:min(len(s), 12)] }

var slugRE = regexp.MustCompile(`[^a-z0-9]+`)

// slug makes a branch-name component from a site name ("sites/Prod.yaml" -> "sites-prod").
func slug(s string) string {
	s = strings.TrimSuffix(strings.TrimSuffix(strings.ToLower(s), ".yaml"), ".yml")
	s = strings.Trim(slugRE.ReplaceAllString(s, "-"), "-")
	if s == "" {
		return "site"
	}
	return s
}

// Markdown renders the decision as a pull-request body. It holds no time or run
// id, so the same change gives the same body on every run.
func (d *RefreshDecision) Markdown(w io.Writer, rep *factory.RefreshReport) error {
	var b strings.Builder
	if d.OldTalos == "" || d.OldTalos == d.NewTalos {
		fmt.Fprintf(&b, "## imgpipe: Talos %s\n", d.NewTalos)
	} else {
		fmt.Fprintf(&b, "## imgpipe: Talos %s → %s\n", d.OldTalos, d.NewTalos)
	}
	switch {
	case !d.Changed && d.MatrixChanged:
		b.WriteString("\nNo rebuild: the committed lock is current. This records the refreshed matrix " +
			"(new releases' firstSeen, from which a soak counts, and broken marks).\n")
	case !d.Changed:
		b.WriteString("\nNothing changed: the committed lock and matrix are current.\n")
	}
	list(&b, "Why", d.Reasons)
	list(&b, "Newer releases passed over", d.PassedOver)
	if d.Drift != nil {
		driftTable(&b, d.Drift)
	}
	if rep != nil && len(rep.Changes) > 0 {
		fmt.Fprintf(&b, "\n<details><summary>Matrix refresh: %d changes from %s</summary>\n\n", len(rep.Changes), rep.Factory)
		lines := make([]string, len(rep.Changes))
		for i, c := range rep.Changes {
			lines[i] = "- " + c.String()
		}
		sort.Strings(lines)
		b.WriteString(strings.Join(lines, "\n") + "\n\n</details>\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func list(b *strings.Builder, title string, items []string) {
	if len(items) == 0 {
		return
	}
	fmt.Fprintf(b, "\n### %s\n\n", title)
	for _, it := range items {
		fmt.Fprintf(b, "- %s\n", it)
	}
}

func driftTable(b *strings.Builder, d *site.Drift) {
	b.WriteString("\n### Profiles\n\n| profile | status | schematic | extension changes |\n|---|---|---|---|\n")
	for _, p := range d.Profiles {
		var ch []string
		for _, c := range p.Changes {
			ch = append(ch, c.Name+" "+changeText(c))
		}
		sch := short12(p.SchematicTo)
		if p.SchematicFrom != p.SchematicTo && p.SchematicFrom != "" {
			sch = short12(p.SchematicFrom) + " → " + sch
		}
		fmt.Fprintf(b, "| %s | %s | `%s` | %s |\n", p.Name, p.Status, sch, strings.Join(ch, "; "))
	}
}

// GitHubOutputs are the step outputs a workflow reads, as name=value lines.
// Every value is one line by construction; a value that is not is refused.
func (d *RefreshDecision) GitHubOutputs(driftFile string) ([]byte, error) {
	kv := [][2]string{
		{"changed", fmt.Sprint(d.Changed)}, {"publish", fmt.Sprint(d.Publish)}, {"first", fmt.Sprint(d.First)},
		{"old_talos", d.OldTalos}, {"new_talos", d.NewTalos},
		{"branch", d.Branch}, {"title", d.Title}, {"drift", driftFile},
	}
	var b bytes.Buffer
	for _, p := range kv {
		if strings.ContainsAny(p[1], "\r\n") {
			return nil, fmt.Errorf("step output %s holds a line break: %q", p[0], p[1])
		}
		fmt.Fprintf(&b, "%s=%s\n", p[0], p[1])
	}
	return b.Bytes(), nil
}
