package upgrade

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/extensions"
	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

// Schema identifies the JSON contract of a plan; bump it on incompatible changes.
const Schema = "imgpipe.dev/upgrade-plan/v1"

// Path strategies.
const (
	// PathConservative goes to the latest patch of the current minor, then the latest
	// patch of every intermediate minor, then the target (the Talos docs' advice).
	PathConservative = "conservative"
	// PathMinimal takes the fewest hops machinery's UpgradeableFrom allows.
	PathMinimal = "minimal"
)

// Step actions.
const (
	ActionLock       = "lock"        // imgpipe resolve --lock: pin the hop's image set for the next two
	ActionPreseed    = "preseed"     // imgpipe mirror: copy/pre-warm the hop's image set into the site's mirrors
	ActionPrewarm    = "prewarm"     // imgpipe schematic prewarm: have the factory build the installer before nodes pull it
	ActionUpgradeK8s = "upgrade-k8s" // talosctl upgrade-k8s, one Kubernetes minor at a time
	ActionDrain      = "drain"       // kubectl drain (GPU nodes, before their upgrade)
	ActionUpgrade    = "upgrade"     // talosctl upgrade --image <factory installer>
	ActionUncordon   = "uncordon"    // kubectl uncordon after a drained node is healthy again
	ActionHealth     = "health"      // health gate before the next step
)

// Sentinel errors for the refusals callers branch on; each comes wrapped with fail.ErrPolicy.
var (
	ErrNoPath             = errors.New("no upgrade path Talos allows")
	ErrDowngrade          = errors.New("downgrades are not planned")
	ErrKubernetesTooNew   = errors.New("running Kubernetes is too new for a hop")
	ErrKubernetesStep     = errors.New("Kubernetes step not possible")
	ErrExtensionDropped   = errors.New("upgrade would drop an extension")
	ErrHopResolve         = errors.New("profile cannot be resolved for a hop")
	ErrKubernetesDowngrad = errors.New("Kubernetes cannot be downgraded")
	ErrUnknownProfile     = errors.New("node profile unknown")
)

// Resolver resolves the site's profiles for one exact Talos release and Kubernetes
// version ("" = the release default). The planner calls it once per hop and once per
// distinct running release.
type Resolver func(talos, kubernetes string, profiles []string) (*site.Lock, error)

// SiteResolver adapts site.Resolve to a Resolver.
func SiteResolver(m *compat.Matrix, cfg *site.Config, matrixName string) Resolver {
	return func(talos, kubernetes string, profiles []string) (*site.Lock, error) {
		return site.Resolve(m, cfg, site.ResolveOptions{
			Talos: talos, Kubernetes: kubernetes, Pre: true, Profiles: profiles, MatrixName: matrixName,
		})
	}
}

// Options tune a plan.
type Options struct {
	// To is the target Talos version query (v1.10.x, ~1.10, v1.10.9, latest).
	To string
	// Kubernetes is the target Kubernetes version or query; empty means the target
	// release's default, or the running version when that is newer.
	Kubernetes string
	// Path is PathConservative (default) or PathMinimal.
	Path string
	// Pre lets the target query pick prereleases and unverified releases.
	Pre bool
	// Parallel is the worker batch size (default 1). Control-plane nodes always go one at a time.
	Parallel int
	// KnownProfiles are the site's profile names; when set, an inventory naming another
	// profile is a usage error pointing at the node's line.
	KnownProfiles []string
	// GPU overrides GPU detection per profile (site config `gpu:`); profiles not listed
	// are GPU profiles when they carry an NVIDIA extension.
	GPU map[string]bool
	// HealthTimeout is the health gate's wait (default 10m); whole seconds, at least 1s.
	HealthTimeout time.Duration
	// Imgpipe is how the plan's lock, pre-seed and pre-warm steps invoke imgpipe
	// (default "imgpipe"); the CLI adds the --config and --matrix it planned with, so
	// those steps resolve exactly what the plan did.
	Imgpipe string
	// InventoryFile names the inventory in errors.
	InventoryFile string
	// Profiles, when set, limits the plan to the nodes of these site profiles (a canary,
	// or one pool such as the GPU workers); other nodes, and nodes whose profile is
	// unknown, are left out. Kubernetes upgrades are cluster-wide, so such a plan keeps
	// the cluster's Kubernetes: Kubernetes must be empty, and a path that needs a
	// Kubernetes step is refused with ErrClusterKubernetes.
	Profiles []string
}

// Plan is an upgrade plan: the JSON contract of `imgpipe upgrade-plan -o json`.
// Field names are snake_case and stable; new fields may be added, none renamed.
type Plan struct {
	Schema  string   `json:"schema"`
	Cluster string   `json:"cluster,omitempty"`
	Path    string   `json:"path"`
	From    State    `json:"from"`
	To      State    `json:"to"`
	Hops    []Hop    `json:"hops"`
	Nodes   int      `json:"nodes"`
	Notes   []string `json:"notes,omitempty"`
	// HealthTimeout is how long each health gate waits ("10m", "1h30m").
	HealthTimeout string `json:"health_timeout"`
	// ProfileFilter is upgrade-plan --profile: only nodes of these profiles are
	// planned (Nodes counts them) and the plan has no Kubernetes step.
	ProfileFilter []string `json:"profile_filter,omitempty"`
}

// DefaultHealthTimeout is the health gates' wait when Options leave it unset.
const DefaultHealthTimeout = 10 * time.Minute

// CheckHealthTimeout accepts whole seconds from 1s to 24h: talosctl, kubectl and
// tuppr's duration pattern (^([0-9]+[smh])+$) all read that form.
func CheckHealthTimeout(d time.Duration) error {
	if d < time.Second || d > 24*time.Hour || d%time.Second != 0 {
		return fail.Usage(fmt.Errorf("--health-timeout %s: give whole seconds between 1s and 24h, like 10m or 1h30m", d))
	}
	return nil
}

// FormatDuration writes d the short way: 10m, 1h30m, 45s.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// State is a set of versions: From lists every distinct running version, To the target.
type State struct {
	Talos      []string `json:"talos"`
	Kubernetes []string `json:"kubernetes"`
}

// Hop is one Talos release every node below it passes through, with the Kubernetes
// steps around it and the ordered rollout.
type Hop struct {
	Index int    `json:"index"` // 1-based
	Talos string `json:"talos"`
	// Kubernetes is the version the cluster runs while this hop's Talos rolls out
	// (after the Kubernetes steps placed before it); the profiles are resolved for it.
	Kubernetes string `json:"kubernetes"`
	// KubernetesAfter is the version at the end of the hop when Kubernetes steps follow
	// the Talos rollout (the last hop, to reach the target).
	KubernetesAfter string `json:"kubernetes_after,omitempty"`
	// KubernetesSteps are the upgrade-k8s targets of this hop, in order.
	KubernetesSteps []string     `json:"kubernetes_steps,omitempty"`
	Nodes           []string     `json:"nodes"` // nodes whose Talos this hop upgrades
	Profiles        []HopProfile `json:"profiles"`
	Steps           []Step       `json:"steps"`
	Notes           []string     `json:"notes,omitempty"`
}

// HopProfile is a profile re-resolved for a hop.
type HopProfile struct {
	Name      string `json:"name"`
	Schematic string `json:"schematic"`
	// SchematicFrom is the profile's schematic before this hop, when it differs
	// (an extension was renamed, added or removed).
	SchematicFrom string         `json:"schematic_from,omitempty"`
	Installer     string         `json:"installer"`
	GPU           bool           `json:"gpu"`
	Extensions    []HopExtension `json:"extensions"`
	// Drift is the change against the previous hop (for the first hop: against what
	// the profile's nodes run now).
	Drift []Drift  `json:"drift"`
	Nodes []string `json:"nodes"`
}

// HopExtension is an extension pinned for a hop.
type HopExtension struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Ref     string `json:"ref"`
	Digest  string `json:"digest,omitempty"`
	// DigestStatus is "pinned" when Digest is set, "unknown" when no source had it.
	DigestStatus string `json:"digest_status"`
}

// Drift kinds.
const (
	DriftAdded   = "added"
	DriftRemoved = "removed"
	DriftUpdated = "updated"
	DriftRenamed = "renamed"
)

// Drift is one extension's change between consecutive hops.
type Drift struct {
	Extension string `json:"extension"`
	Change    string `json:"change"` // added | removed | updated | renamed
	From      string `json:"from,omitempty"`
	To        string `json:"to,omitempty"`
}

// Step is one ordered action of a hop. Steps with the same Batch (> 0) may run in parallel.
type Step struct {
	Node    string `json:"node"` // "" for cluster-wide steps (pre-seed, pre-warm)
	Address string `json:"address,omitempty"`
	Role    string `json:"role,omitempty"`
	Profile string `json:"profile,omitempty"`
	Action  string `json:"action"`
	Image   string `json:"image"` // the installer of upgrade and pre-warm steps, else ""
	Command string `json:"command"`
	Batch   int    `json:"batch,omitempty"`
	// Schematic is the schematic of Image (upgrade steps); SchematicFrom the one the
	// node runs now, when known and different.
	Schematic     string `json:"schematic,omitempty"`
	SchematicFrom string `json:"schematic_from,omitempty"`
	Note          string `json:"note,omitempty"`
	// Talos is the release an upgrade step installs; Kubernetes the version an
	// upgrade-k8s step goes to. The script renders its commands from these typed
	// fields, not from Command.
	Talos      string `json:"talos,omitempty"`
	Kubernetes string `json:"kubernetes,omitempty"`
	// Preserve is set on upgrades from Talos < v1.8 (--preserve keeps EPHEMERAL).
	Preserve bool `json:"preserve,omitempty"`
	// GPU marks the drain, upgrade and uncordon steps of a drained GPU node: the
	// script checks its NVIDIA modules are loaded before uncordoning it.
	GPU bool `json:"gpu,omitempty"`
	// Reimage marks an upgrade to the release the node runs already, for a new schematic.
	Reimage bool `json:"reimage,omitempty"`
}

// q shell-quotes one value of a command.
func q(s string) string { return ShellQuote(s) }

// node is the planner's running view of one inventory node.
type node struct {
	*Node
	idx       int // in the inventory
	talos     *semver.Version
	k8s       *semver.Version
	gpu       bool
	prior     map[string]extRef // canonical name -> what the node runs before its next hop
	priorFrom string            // where prior came from, for messages
	schematic string            // running schematic, when known
	profileID string            // the profile's schematic for the release the node runs
}

type extRef struct{ name, version string }

type planner struct {
	m       *compat.Matrix
	inv     *Inventory
	resolve Resolver
	opts    Options

	nodes   []*node
	cp      *node // the control-plane node upgrade-k8s and health gates run against
	notes   []string
	fixedK  *semver.Version // the cluster's Kubernetes, pinned by Options.Profiles
	upgrade map[[2]string]error
	k8sOK   map[[2]string]error
	patch   map[uint64]string
	catchUp map[string]string // Kubernetes version -> why a catch-up step to it was planned
}

// NewPlan plans the upgrade of every inventory node to opts.To. It refuses (errors
// wrapping fail.ErrPolicy, naming the hop, node and reason) when Talos allows no path,
// a hop cannot run the cluster's Kubernetes, a profile cannot be resolved for a hop,
// or a hop would drop an extension a node runs now.
func NewPlan(m *compat.Matrix, inv *Inventory, resolve Resolver, opts Options) (*Plan, error) {
	if opts.Path == "" {
		opts.Path = PathConservative
	}
	if opts.Path != PathConservative && opts.Path != PathMinimal {
		return nil, fail.Usage(fmt.Errorf("--path %q: use conservative or minimal", opts.Path))
	}
	if opts.Parallel == 0 {
		opts.Parallel = 1
	}
	if opts.Parallel < 1 {
		return nil, fail.Usage(fmt.Errorf("--parallel %d: give a batch size of 1 or more", opts.Parallel))
	}
	if opts.HealthTimeout == 0 {
		opts.HealthTimeout = DefaultHealthTimeout
	}
	if err := CheckHealthTimeout(opts.HealthTimeout); err != nil {
		return nil, err
	}
	if opts.Imgpipe == "" {
		opts.Imgpipe = "imgpipe"
	}
	if opts.InventoryFile == "" {
		opts.InventoryFile = "inventory"
	}
	if inv == nil || len(inv.Nodes) == 0 {
		return nil, fail.Usage(errors.New("the inventory lists no nodes"))
	}
	if len(opts.Profiles) > 0 {
		if opts.Kubernetes != "" {
			return nil, fail.Usage(errors.New("--kubernetes with --profile: Kubernetes upgrades are cluster-wide; plan them without --profile"))
		}
		known := opts.KnownProfiles
		if known == nil { // no site config to check against: only empty names are refused
			known = opts.Profiles
		}
		if err := CheckProfiles(known, opts.Profiles); err != nil {
			return nil, err
		}
		opts.Profiles = slices.Compact(slices.Sorted(slices.Values(opts.Profiles)))
	} else if err := unknownProfiles(inv); err != nil {
		return nil, err // with --profile, nodes of unknown profile are left out instead
	}
	p := &planner{m: m, inv: inv, resolve: resolve, opts: opts,
		upgrade: map[[2]string]error{}, k8sOK: map[[2]string]error{}, patch: map[uint64]string{}, catchUp: map[string]string{}}
	return p.plan()
}

func (p *planner) plan() (*Plan, error) {
	target, err := p.m.Resolve(p.opts.To, compat.ResolveOptions{Pre: p.opts.Pre})
	if err != nil {
		return nil, fmt.Errorf("resolving --to: %w", err)
	}
	if err := p.loadNodes(); err != nil {
		return nil, err
	}
	plan := &Plan{Schema: Schema, Cluster: p.inv.Cluster, Path: p.opts.Path, Nodes: len(p.nodes), Hops: []Hop{},
		HealthTimeout: FormatDuration(p.opts.HealthTimeout), ProfileFilter: p.opts.Profiles}
	plan.From = p.state()

	var ahead []string
	for _, n := range p.nodes {
		if n.talos.GreaterThan(target.Semver()) {
			ahead = append(ahead, fmt.Sprintf("%s runs %s", n.Name, n.Talos))
		}
	}
	if len(ahead) > 0 {
		return nil, fail.Policy(fmt.Errorf("%w: target Talos %s is older than what nodes run (%s): pick a newer --to",
			ErrDowngrade, target.Version, firstN(ahead, 10)))
	}

	kt, err := p.targetKubernetes(target)
	if err != nil {
		return nil, err
	}

	versions, err := p.talosHops(target)
	if err != nil {
		return nil, err
	}
	if err := p.checkNodePaths(versions); err != nil {
		return nil, err
	}
	p.baselines()

	var errs []error
	last := map[string]*site.Profile{} // profile -> as resolved for the previous hop
	for i, rel := range versions {
		hop, err := p.hop(i, rel, i == len(versions)-1, kt, last)
		if err != nil {
			if errors.Is(err, fail.ErrUsage) {
				return nil, err
			}
			errs = append(errs, err)
			if errors.Is(err, ErrKubernetesTooNew) || errors.Is(err, ErrKubernetesStep) || errors.Is(err, ErrClusterKubernetes) {
				break // later hops would only repeat the same refusal
			}
			continue
		}
		if hop != nil {
			plan.Hops = append(plan.Hops, *hop)
		}
	}
	if len(errs) > 0 {
		return nil, fail.Policy(fmt.Errorf("upgrade refused:\n%w", joinIndented(errs)))
	}
	for i := range plan.Hops {
		plan.Hops[i].Index = i + 1
	}
	plan.To = State{Talos: []string{target.Version}, Kubernetes: []string{kt.String()}}
	plan.Notes = p.notes
	return plan, nil
}

// loadNodes parses versions, checks profiles and picks the control-plane node that
// cluster-wide commands run against.
func (p *planner) loadNodes() error {
	var errs []error
	for i := range p.inv.Nodes {
		in := &p.inv.Nodes[i]
		tv, err := semver.StrictNewVersion(strings.TrimPrefix(in.Talos, "v"))
		if err != nil {
			errs = append(errs, p.nodeErr(i, in, fmt.Sprintf("Talos version %q: %v", in.Talos, err)))
			continue
		}
		kv, err := semver.StrictNewVersion(strings.TrimPrefix(in.Kubernetes, "v"))
		if err != nil {
			errs = append(errs, p.nodeErr(i, in, fmt.Sprintf("Kubernetes version %q: %v", in.Kubernetes, err)))
			continue
		}
		if p.opts.KnownProfiles != nil && p.selected(in) && !slices.Contains(p.opts.KnownProfiles, in.Profile) {
			errs = append(errs, p.nodeErr(i, in, fmt.Sprintf("profile %q is not in the site config (profiles: %s): fix the node's profile or pass --config",
				in.Profile, strings.Join(p.opts.KnownProfiles, ", "))))
			continue
		}
		own := *in // the plan advances versions as hops pass; the caller's inventory stays as given
		n := &node{Node: &own, idx: i, talos: tv, k8s: kv, gpu: in.GPU, schematic: in.Schematic}
		p.nodes = append(p.nodes, n)
		if in.Role == RoleControlPlane && (p.cp == nil || in.Name < p.cp.Name) {
			p.cp = n
		}
	}
	if len(errs) > 0 {
		return fail.Usage(boundedList(errs, 10))
	}
	if p.cp == nil {
		return fail.Usage(fmt.Errorf("%s: no controlplane node: Kubernetes upgrades and health gates run against one", p.opts.InventoryFile))
	}
	if err := p.narrow(); err != nil {
		return err
	}
	// A kubelet newer than the API server is outside Kubernetes' version skew policy;
	// planning from it would step that node's Kubernetes backwards.
	ck := p.clusterK()
	for _, n := range p.nodes {
		if n.k8s.GreaterThan(ck) {
			errs = append(errs, p.nodeErr(n.idx, n.Node, fmt.Sprintf("kubelet %s is newer than the control plane's Kubernetes %s (kubelets may not be newer than the API server): check the inventory", n.k8s, ck)))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fail.Usage(boundedList(errs, 10))
}

// unknownProfiles refuses the nodes whose profile could not be matched, by name, the
// first few with why and a count of the rest.
func unknownProfiles(inv *Inventory) error {
	var errs []error
	for i := range inv.Nodes {
		n := &inv.Nodes[i]
		if why, ok := n.ProfileUnknown(); ok {
			errs = append(errs, fmt.Errorf("node %s: %s", n.Name, why))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fail.Policy(fmt.Errorf("%w for %d node(s): label each with %s=<profile> or fix the site config, then re-read the inventory:\n%w",
		ErrUnknownProfile, len(errs), "imgpipe.dev/profile", boundedList(errs, 10)))
}

func (p *planner) nodeErr(i int, n *Node, msg string) error {
	if line := p.inv.lineOf(i); line > 0 {
		return fmt.Errorf("%s:%d: node %s: %s", p.opts.InventoryFile, line, n.Name, msg)
	}
	return fmt.Errorf("%s: node %s: %s", p.opts.InventoryFile, n.Name, msg)
}

func (p *planner) state() State {
	var s State
	for _, n := range p.nodes {
		if !slices.Contains(s.Talos, n.Talos) {
			s.Talos = append(s.Talos, n.Talos)
		}
		if !slices.Contains(s.Kubernetes, n.k8s.String()) {
			s.Kubernetes = append(s.Kubernetes, n.k8s.String())
		}
	}
	sortVersions(s.Talos)
	sortVersions(s.Kubernetes)
	return s
}

// clusterK is the control plane's Kubernetes: what upgrade-k8s starts from.
func (p *planner) clusterK() *semver.Version {
	if p.fixedK != nil {
		return p.fixedK
	}
	var k *semver.Version
	for _, n := range p.nodes {
		if n.Role == RoleControlPlane && (k == nil || n.k8s.GreaterThan(k)) {
			k = n.k8s
		}
	}
	return k
}

func (p *planner) targetKubernetes(target *compat.Release) (*semver.Version, error) {
	if len(p.opts.Profiles) > 0 {
		return p.keepKubernetes(target.Version)
	}
	ck := p.clusterK()
	var kt *semver.Version
	if q := strings.TrimSpace(p.opts.Kubernetes); q != "" {
		s, err := p.m.ResolveKubernetes(q, target)
		if err != nil {
			return nil, fmt.Errorf("resolving --kubernetes: %w", err)
		}
		kt = semver.MustParse(s)
		if kt.LessThan(ck) {
			return nil, fail.Policy(fmt.Errorf("%w: the control plane runs %s, --kubernetes asks for %s", ErrKubernetesDowngrad, ck, kt))
		}
	} else {
		if target.Kubernetes == "" {
			return nil, fail.Usage(fmt.Errorf("Talos %s has no default Kubernetes in the matrix: pass --kubernetes", target.Version))
		}
		kt = semver.MustParse(target.Kubernetes)
		if ck.GreaterThan(kt) {
			p.notef("the control plane runs Kubernetes %s, newer than Talos %s's default %s: keeping %s", ck, target.Version, kt, ck)
			kt = ck
		}
	}
	if err := p.k8sSupported(target.Version, kt); err != nil {
		if kt.Equal(ck) {
			rng := compat.SupportedKubernetes(target.Version)
			return nil, fail.Policy(fmt.Errorf("%w: the control plane runs Kubernetes %s, Talos %s supports %s to %s, and Kubernetes cannot be downgraded",
				ErrKubernetesTooNew, ck, target.Version, rng.MinMinor, rng.MaxMinor))
		}
		return nil, fmt.Errorf("target Kubernetes: %w", err)
	}
	return kt, nil
}

// talosHops returns the releases every node passes through, oldest first, ending
// with the target (always included, so a plan that only changes Kubernetes or
// re-images nodes has a hop to hang on).
func (p *planner) talosHops(target *compat.Release) ([]*compat.Release, error) {
	oldest := p.nodes[0].talos
	for _, n := range p.nodes[1:] {
		if n.talos.LessThan(oldest) {
			oldest = n.talos
		}
	}
	tv := target.Semver()
	// Intermediate candidates: the latest stable patch of every minor between the
	// oldest running release and the target. A non-latest patch is never a better
	// intermediate: Talos decides upgradeability by the host's version, and newer hosts
	// are allowed whatever older ones are.
	var inter []*compat.Release
	seen := map[[2]uint64]bool{}
	for _, r := range p.m.Stable() {
		v := r.Semver()
		key := [2]uint64{v.Major(), v.Minor()}
		if seen[key] || !v.LessThan(tv) || (v.Major() == tv.Major() && v.Minor() == tv.Minor()) {
			continue
		}
		if v.Major() < oldest.Major() || (v.Major() == oldest.Major() && v.Minor() < oldest.Minor()) {
			continue
		}
		seen[key] = true
		lp, ok := p.m.LatestPatch(v)
		if ok && lp.Semver().GreaterThan(oldest) && lp.Semver().LessThan(tv) {
			inter = append(inter, lp)
		}
	}
	var hops []*compat.Release
	switch p.opts.Path {
	case PathConservative:
		hops = append(inter, target)
		from := oldest.Original()
		for _, h := range hops {
			if !h.Semver().GreaterThan(semver.MustParse(from)) {
				continue
			}
			if err := p.upgradeable(h.Version, from); err != nil {
				return nil, fail.Policy(fmt.Errorf("%w from %s to %s along the conservative path: %v",
					ErrNoPath, "v"+oldest.String(), target.Version, err))
			}
			from = h.Version
		}
	case PathMinimal:
		var err error
		hops, err = p.fewestHops("v"+oldest.String(), inter, target)
		if err != nil {
			return nil, err
		}
	}
	if !tv.GreaterThan(oldest) {
		hops = []*compat.Release{target} // everyone runs the target already
	}
	return hops, nil
}

// fewestHops is a breadth-first search over {intermediates, target}; of equally short
// paths it takes the one through the newest releases.
func (p *planner) fewestHops(from string, inter []*compat.Release, target *compat.Release) ([]*compat.Release, error) {
	cands := append(slices.Clone(inter), target)
	const start = -1
	parent := map[int]int{}
	frontier := []int{start}
	version := func(i int) string {
		if i == start {
			return from
		}
		return cands[i].Version
	}
	var lastErr error
	for len(frontier) > 0 {
		var next []int
		for _, u := range frontier {
			// Newest first, so the first parent recorded is the newest one.
			for j := len(cands) - 1; j >= 0; j-- {
				if _, done := parent[j]; done {
					continue
				}
				if !cands[j].Semver().GreaterThan(semver.MustParse(version(u))) {
					continue
				}
				if err := p.upgradeable(cands[j].Version, version(u)); err != nil {
					lastErr = err
					continue
				}
				parent[j] = u
				next = append(next, j)
			}
		}
		if _, ok := parent[len(cands)-1]; ok {
			break
		}
		slices.SortFunc(next, func(a, b int) int { return cands[b].Semver().Compare(cands[a].Semver()) })
		frontier = next
	}
	t := len(cands) - 1
	if _, ok := parent[t]; !ok {
		if semver.MustParse(from).Equal(target.Semver()) {
			return []*compat.Release{target}, nil
		}
		return nil, fail.Policy(fmt.Errorf("%w from %s to %s: %v", ErrNoPath, from, target.Version, lastErr))
	}
	var path []*compat.Release
	for i := t; i != start; i = parent[i] {
		path = append(path, cands[i])
	}
	slices.Reverse(path)
	return path, nil
}

// checkNodePaths checks every node's own entry into the hop sequence: nodes newer
// than the oldest join at the first hop above them.
func (p *planner) checkNodePaths(hops []*compat.Release) error {
	var errs []error
	for _, n := range p.nodes {
		for _, h := range hops {
			if !h.Semver().GreaterThan(n.talos) {
				continue
			}
			if err := p.upgradeable(h.Version, n.Talos); err != nil {
				errs = append(errs, fmt.Errorf("node %s (%s): %v", n.Name, n.Talos, err))
			}
			break
		}
	}
	if len(errs) > 0 {
		return fail.Policy(fmt.Errorf("%w:\n%w", ErrNoPath, boundedList(errs, 10)))
	}
	return nil
}

func (p *planner) upgradeable(to, from string) error {
	key := [2]string{to, from}
	if err, ok := p.upgrade[key]; ok {
		return err
	}
	err := compat.UpgradeableFrom(to, from)
	p.upgrade[key] = err
	return err
}

func (p *planner) k8sSupported(talos string, k *semver.Version) error {
	key := [2]string{talos, k.String()}
	if err, ok := p.k8sOK[key]; ok {
		return err
	}
	err := compat.KubernetesSupported(talos, k.String())
	p.k8sOK[key] = err
	return err
}

// newestPatch is the newest Kubernetes patch of 1.<minor> the matrix knows; a minor it
// does not know gets .0, with a note.
func (p *planner) newestPatch(minor uint64, rel *compat.Release) *semver.Version {
	if s, ok := p.patch[minor]; ok {
		return semver.MustParse(s)
	}
	s, err := p.m.ResolveKubernetes(fmt.Sprintf("1.%d", minor), rel)
	if err != nil {
		s = fmt.Sprintf("1.%d.0", minor)
		p.notef("the matrix knows no Kubernetes 1.%d release; the plan uses %s: prefer the newest 1.%d patch", minor, s, minor)
	}
	p.patch[minor] = s
	return semver.MustParse(s)
}

func (p *planner) notef(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !slices.Contains(p.notes, msg) {
		p.notes = append(p.notes, msg)
	}
}

// baselines records what each node runs now: its listed extensions, else its profile
// resolved for its running release (one resolve per distinct release).
func (p *planner) baselines() {
	byVersion := map[string][]*node{}
	var order []string
	for _, n := range p.nodes {
		if len(n.Extensions) > 0 {
			n.prior = map[string]extRef{}
			for _, e := range n.Extensions {
				if c := canonical(e); c != "schematic" { // the factory's virtual extension
					n.prior[c] = extRef{name: extensions.Full(e)}
				}
			}
			n.priorFrom = "the inventory"
			continue
		}
		if _, ok := byVersion[n.Talos]; !ok {
			order = append(order, n.Talos)
		}
		byVersion[n.Talos] = append(byVersion[n.Talos], n)
	}
	for _, v := range order {
		nodes := byVersion[v]
		profiles := profilesOf(nodes)
		k := ""
		if r, ok := p.m.Release(v); ok {
			k = r.Kubernetes
		}
		lock, err := p.resolve(v, k, profiles)
		if err != nil {
			p.notef("cannot resolve profiles %s for Talos %s, the release nodes %s run now, so drift against them is not checked (list their extensions in the inventory to check it): %v",
				strings.Join(profiles, ", "), v, names(nodes, 6), firstLine(err))
			continue
		}
		mismatch := map[string][]*node{}
		for _, n := range nodes {
			prof, ok := lock.Profile(n.Profile)
			if !ok {
				continue
			}
			n.prior = extSet(prof)
			n.priorFrom = fmt.Sprintf("profile %s at %s", n.Profile, v)
			n.profileID = prof.Schematic.ID
			if n.Schematic != "" && n.Schematic != prof.Schematic.ID {
				mismatch[n.Profile+" "+prof.Schematic.ID] = append(mismatch[n.Profile+" "+prof.Schematic.ID], n)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(mismatch)) {
			prof, id, _ := strings.Cut(k, " ")
			p.notef("nodes %s run a different schematic than profile %s resolves to at %s (%s): their extensions may differ from the profile's; list them under extensions: to check for drops",
				names(mismatch[k], 6), prof, v, short(id))
		}
	}
}

// hop plans one hop: Kubernetes steps before it, resolution, drift and drop checks,
// the rollout, and (for the last hop) Kubernetes steps to the target.
func (p *planner) hop(i int, rel *compat.Release, final bool, kt *semver.Version, last map[string]*site.Profile) (*Hop, error) {
	hop := &Hop{Talos: rel.Version, Nodes: []string{}, Profiles: []HopProfile{}, Steps: []Step{}}
	label := fmt.Sprintf("hop %d (Talos %s)", i+1, rel.Version)

	var part []*node
	for _, n := range p.nodes {
		if n.talos.LessThan(rel.Semver()) {
			part = append(part, n)
		}
	}

	pre, err := p.k8sBefore(label, rel, part)
	if err != nil {
		return nil, err
	}
	hop.Kubernetes = p.clusterK().String()

	// Re-image nodes already on the release when their schematic is not the profile's.
	profiles := profilesOf(part)
	var atTarget []*node
	if final {
		for _, n := range p.nodes {
			if n.talos.Equal(rel.Semver()) && n.schematic != "" {
				atTarget = append(atTarget, n)
				if !slices.Contains(profiles, n.Profile) {
					profiles = append(profiles, n.Profile)
				}
			}
		}
		slices.Sort(profiles)
	}

	var lock *site.Lock
	if len(profiles) > 0 {
		var err error
		lock, err = p.resolve(rel.Version, hop.Kubernetes, profiles)
		if err != nil {
			if errors.Is(err, fail.ErrUsage) && !errors.Is(err, fail.ErrPolicy) {
				return nil, fmt.Errorf("%s: %w", label, err)
			}
			// Name the nodes of the profiles that fail, not every node of the hop.
			var failing []*node
			for _, name := range profiles {
				if _, perr := p.resolve(rel.Version, hop.Kubernetes, []string{name}); perr != nil {
					for _, n := range part {
						if n.Profile == name {
							failing = append(failing, n)
						}
					}
				}
			}
			if len(failing) == 0 {
				failing = part
			}
			p.advance(part, rel, nil) // later hops then report their own problems, not this one again
			return nil, fmt.Errorf("%w: %s, for nodes %s: %w", ErrHopResolve, label, names(failing, 8), err)
		}
	}
	for _, n := range atTarget {
		if prof, ok := lock.Profile(n.Profile); ok && prof.Schematic.ID != n.schematic {
			part = append(part, n)
		}
	}

	// Drift per profile and drops per node.
	var drops []error
	for _, name := range profiles {
		prof, ok := lock.Profile(name)
		if !ok {
			return nil, fmt.Errorf("%s: the resolver returned no profile %s", label, name)
		}
		hp := HopProfile{Name: name, Schematic: prof.Schematic.ID, Installer: prof.Installer,
			GPU: p.isGPU(prof), Extensions: []HopExtension{}, Nodes: []string{}}
		for _, e := range prof.Extensions {
			hp.Extensions = append(hp.Extensions, HopExtension{Name: e.Name, Version: e.Version, Ref: e.Ref, Digest: e.Digest, DigestStatus: e.DigestStatus})
		}
		next := extSet(prof)
		var before map[string]extRef
		if prev, ok := last[name]; ok {
			before = extSet(prev)
			if prev.Schematic.ID != prof.Schematic.ID {
				hp.SchematicFrom = prev.Schematic.ID
			}
		}
		for _, n := range part {
			if n.Profile != name {
				continue
			}
			hp.Nodes = append(hp.Nodes, n.Name)
			n.gpu = n.gpu || hp.GPU
			if before == nil && n.prior != nil {
				before = n.prior
				if n.profileID != "" && n.profileID != prof.Schematic.ID {
					hp.SchematicFrom = n.profileID
				}
			}
			for _, c := range slices.Sorted(maps.Keys(n.prior)) {
				if _, ok := next[c]; ok {
					continue
				}
				drops = append(drops, fmt.Errorf("%s: node %s (profile %s, %s -> %s) runs %s (per %s), which %s",
					label, n.Name, name, n.Talos, rel.Version, n.prior[c].name, n.priorFrom, dropReason(prof, c, rel.Version)))
			}
		}
		hp.Drift = diff(before, next)
		hop.Profiles = append(hop.Profiles, hp)
		cp := *prof
		last[name] = &cp
	}
	if len(drops) > 0 {
		p.advance(part, rel, lock)
		return nil, fmt.Errorf("%w:\n%w", ErrExtensionDropped, boundedList(drops, 10))
	}
	sortRollout(part)

	// Trailing Kubernetes steps, to the target, after this hop's node upgrades.
	var post []*semver.Version
	if final && len(p.opts.Profiles) > 0 {
		p.noteKubeletSkew(kt)
	} else if final {
		if post, err = p.k8sAfter(label, rel, part, kt); err != nil {
			return nil, err
		}
	}

	if len(part) == 0 && len(pre) == 0 && len(post) == 0 {
		return nil, nil
	}
	p.steps(hop, rel, lock, part, pre, post)
	for _, n := range part {
		hop.Nodes = append(hop.Nodes, n.Name)
	}
	p.advance(part, rel, lock)
	if len(post) > 0 {
		hop.KubernetesAfter = post[len(post)-1].String()
	}
	for _, k := range append(slices.Clone(pre), post...) {
		hop.KubernetesSteps = append(hop.KubernetesSteps, k.String())
	}
	// Keep only the profiles of nodes this hop touches.
	hop.Profiles = slices.DeleteFunc(hop.Profiles, func(hp HopProfile) bool { return len(hp.Nodes) == 0 })
	return hop, nil
}

// k8sBefore returns the Kubernetes steps a hop needs first: every upgraded node's
// kubelet must be in the hop's supported range. Kubernetes is never downgraded.
func (p *planner) k8sBefore(label string, rel *compat.Release, part []*node) ([]*semver.Version, error) {
	rng := compat.SupportedKubernetes(rel.Version)
	minMinor, maxMinor := minorOf(rng.MinMinor), minorOf(rng.MaxMinor)
	var tooNew []string
	for _, n := range part {
		if n.k8s.Minor() > maxMinor {
			tooNew = append(tooNew, fmt.Sprintf("%s runs %s", n.Name, n.k8s))
		}
	}
	if len(tooNew) > 0 {
		hint := ""
		if p.opts.Path == PathConservative {
			hint = "; --path minimal may skip this release"
		}
		return nil, fmt.Errorf("%w: %s supports Kubernetes %s to %s, and Kubernetes cannot be downgraded (%s)%s",
			ErrKubernetesTooNew, label, rng.MinMinor, rng.MaxMinor, firstN(tooNew, 10), hint)
	}
	var pre []*semver.Version
	for {
		lag := false
		for _, n := range part {
			if n.k8s.Minor() < minMinor {
				lag = true
			}
		}
		if !lag {
			break
		}
		if len(p.opts.Profiles) > 0 {
			return nil, p.lagRefusal(label, rng.MinMinor, part, minMinor)
		}
		ck := p.clusterK()
		next := ck
		if ck.Minor() < minMinor {
			next = p.newestPatch(ck.Minor()+1, rel)
		}
		steps, err := p.skewSteps(next, func(n *node) string { return n.Talos })
		if err != nil {
			return nil, fmt.Errorf("%w: %s needs Kubernetes %s or newer first: %v", ErrKubernetesStep, label, rng.MinMinor, err)
		}
		pre = append(pre, steps...)
	}
	for _, n := range part {
		if err := p.k8sSupported(rel.Version, n.k8s); err != nil {
			return nil, fmt.Errorf("%s: node %s: %w", label, n.Name, err)
		}
	}
	return pre, nil
}

// k8sAfter returns the Kubernetes steps from the cluster's version to kt, one minor at
// a time, after the last hop's nodes run rel.
func (p *planner) k8sAfter(label string, rel *compat.Release, part []*node, kt *semver.Version) ([]*semver.Version, error) {
	var post []*semver.Version
	upgraded := map[*node]bool{}
	for _, n := range part {
		upgraded[n] = true
	}
	talosOf := func(n *node) string {
		if upgraded[n] {
			return rel.Version
		}
		return n.Talos
	}
	for !p.aligned(kt) {
		ck := p.clusterK()
		next := kt
		if kt.Minor() > ck.Minor()+1 {
			next = p.newestPatch(ck.Minor()+1, rel)
		}
		steps, err := p.skewSteps(next, talosOf)
		if err != nil {
			return nil, fmt.Errorf("%w: reaching Kubernetes %s after %s: %v", ErrKubernetesStep, kt, label, err)
		}
		post = append(post, steps...)
	}
	return post, nil
}

// advance records that nodes now run rel, with their profile as resolved for it (when
// lock is not nil).
func (p *planner) advance(nodes []*node, rel *compat.Release, lock *site.Lock) {
	type after struct {
		prior    map[string]extRef // shared by the profile's nodes: read only
		from, id string
	}
	byProfile := map[string]*after{}
	for _, n := range nodes {
		n.talos, n.Talos = rel.Semver(), rel.Version
		if lock == nil {
			continue
		}
		a, ok := byProfile[n.Profile]
		if !ok {
			if prof, found := lock.Profile(n.Profile); found {
				a = &after{prior: extSet(prof), from: fmt.Sprintf("profile %s at %s", n.Profile, rel.Version), id: prof.Schematic.ID}
			}
			byProfile[n.Profile] = a
		}
		if a != nil {
			n.prior, n.priorFrom, n.schematic, n.profileID = a.prior, a.from, a.id, a.id
		}
	}
}

// skewSteps moves the cluster to Kubernetes k. When the control plane's next minor
// would leave a kubelet further behind the API server than the version skew policy
// allows (3 minors from 1.28, 2 before), a catch-up step to the control plane's
// current version comes first: upgrade-k8s brings every kubelet to it.
func (p *planner) skewSteps(k *semver.Version, talosOf func(*node) string) ([]*semver.Version, error) {
	var out []*semver.Version
	ck := p.clusterK()
	if k.Minor() > ck.Minor() {
		skew := uint64(2)
		if k.Minor() >= 28 {
			skew = 3
		}
		var lag []*node
		for _, n := range p.nodes {
			if n.k8s.Minor()+skew < k.Minor() {
				lag = append(lag, n)
			}
		}
		if len(lag) > 0 {
			why := fmt.Sprintf("kubelet skew catch-up: %s lag more than %d minors behind Kubernetes %s; upgrade-k8s --to %s (the control plane's version) brings every kubelet within the skew policy first",
				nodeVersions(lag, 5), skew, k, ck)
			if err := p.k8sStepAt(ck, talosOf); err != nil {
				return nil, fmt.Errorf("catching kubelets up to %s: %w", ck, err)
			}
			p.catchUp[ck.String()] = why
			p.notef("%s", why)
			out = append(out, ck)
		}
	}
	if err := p.k8sStepAt(k, talosOf); err != nil {
		return nil, err
	}
	return append(out, k), nil
}

// nodeVersions names nodes with their kubelet, the first max and a count.
func nodeVersions(nodes []*node, max int) string {
	var parts []string
	for i, n := range nodes {
		if i == max {
			parts = append(parts, fmt.Sprintf("and %d more", len(nodes)-max))
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", n.Name, n.k8s))
	}
	return "kubelets of " + strings.Join(parts, ", ")
}

// k8sStep moves the whole cluster to Kubernetes k (upgrade-k8s updates every kubelet),
// which every node's running Talos must support.
func (p *planner) k8sStep(k *semver.Version) error {
	return p.k8sStepAt(k, func(n *node) string { return n.Talos })
}

// k8sStepAt is k8sStep with each node's Talos at that point given by talosOf.
func (p *planner) k8sStepAt(k *semver.Version, talosOf func(*node) string) error {
	var errs []error
	seen := map[string]bool{}
	for _, n := range p.nodes {
		t := talosOf(n)
		if seen[t] {
			continue
		}
		seen[t] = true
		if err := p.k8sSupported(t, k); err != nil {
			errs = append(errs, fmt.Errorf("node %s would run Talos %s: %v", n.Name, t, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, n := range p.nodes {
		n.k8s = k
	}
	return nil
}

func (p *planner) aligned(k *semver.Version) bool {
	for _, n := range p.nodes {
		if !n.k8s.Equal(k) {
			return false
		}
	}
	return true
}

func (p *planner) isGPU(prof *site.Profile) bool {
	if v, ok := p.opts.GPU[prof.Name]; ok {
		return v
	}
	for _, e := range prof.Extensions {
		if fam, _ := extensions.Classify(e.Name); fam != extensions.FamilyOther {
			return true
		}
	}
	return false
}

var v18 = semver.MustParse("1.8.0")

// sortRollout orders nodes control plane first, then GPU nodes, then by name.
func sortRollout(nodes []*node) {
	rank := func(n *node) int {
		switch {
		case n.Role == RoleControlPlane:
			return 0
		case n.gpu || n.GPU:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(nodes, func(a, b *node) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// canonical names an extension across releases: short name, with the renames the
// factory aliases (and the pre-v1.8 NVIDIA names, which became -lts) applied.
func canonical(name string) string {
	c, _ := extensions.Normalize(name, canonicalAt)
	return c
}

var canonicalAt = semver.MustParse("1.99.0")

func extSet(p *site.Profile) map[string]extRef {
	out := make(map[string]extRef, len(p.Extensions))
	for _, e := range p.Extensions {
		out[canonical(e.Name)] = extRef{name: e.Name, version: e.Version}
	}
	return out
}

func diff(before, after map[string]extRef) []Drift {
	out := []Drift{}
	if before == nil {
		for _, c := range slices.Sorted(maps.Keys(after)) {
			out = append(out, Drift{Extension: after[c].name, Change: DriftAdded, To: after[c].version})
		}
		return out
	}
	for _, c := range slices.Sorted(maps.Keys(before)) {
		b := before[c]
		a, ok := after[c]
		switch {
		case !ok:
			out = append(out, Drift{Extension: b.name, Change: DriftRemoved, From: b.version})
		case a.name != b.name:
			out = append(out, Drift{Extension: a.name, Change: DriftRenamed, From: strings.TrimSpace(b.name + " " + b.version), To: a.name + " " + a.version})
		case a.version != b.version && b.version != "": // "": the inventory names it without a version
			out = append(out, Drift{Extension: a.name, Change: DriftUpdated, From: b.version, To: a.version})
		}
	}
	for _, c := range slices.Sorted(maps.Keys(after)) {
		if _, ok := before[c]; !ok {
			out = append(out, Drift{Extension: after[c].name, Change: DriftAdded, To: after[c].version})
		}
	}
	return out
}

func dropReason(prof *site.Profile, c, talos string) string {
	for _, o := range prof.Omitted {
		if canonical(o.Name) == c {
			return "the profile omits there: " + o.Reason
		}
	}
	return fmt.Sprintf("profile %s does not have at %s", prof.Name, talos)
}

func profilesOf(nodes []*node) []string {
	var out []string
	for _, n := range nodes {
		if !slices.Contains(out, n.Profile) {
			out = append(out, n.Profile)
		}
	}
	slices.Sort(out)
	return out
}

func names(nodes []*node, max int) string {
	var out []string
	for i, n := range nodes {
		if i == max {
			out = append(out, fmt.Sprintf("and %d more", len(nodes)-max))
			break
		}
		out = append(out, n.Name)
	}
	return strings.Join(out, ", ")
}

func minorOf(s string) uint64 {
	_, m, _ := strings.Cut(s, ".")
	v, _ := strconv.ParseUint(m, 10, 64)
	return v
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

func sortVersions(vs []string) {
	slices.SortFunc(vs, func(a, b string) int {
		va, err1 := semver.NewVersion(a)
		vb, err2 := semver.NewVersion(b)
		if err1 != nil || err2 != nil {
			return strings.Compare(a, b)
		}
		return va.Compare(vb)
	})
}

// joinIndented lists errors one per line as "  - reason", continuation lines indented
// under their item, so a refusal with several reasons stays readable on a terminal.
func joinIndented(errs []error) error {
	return &indented{errs: errs}
}

type indented struct {
	errs []error
	all  []error // every error, when errs shows only the first ones
}

func (e *indented) Error() string {
	parts := make([]string, len(e.errs))
	for i, err := range e.errs {
		parts[i] = "  - " + strings.ReplaceAll(err.Error(), "\n", "\n    ")
	}
	return strings.Join(parts, "\n")
}

func (e *indented) Unwrap() []error {
	if e.all != nil {
		return e.all
	}
	return e.errs
}
