package machineconfig

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/siderolabs/talos/pkg/machinery/config"
	"github.com/siderolabs/talos/pkg/machinery/config/configpatcher"
	"github.com/siderolabs/talos/pkg/machinery/config/generate"
	"github.com/siderolabs/talos/pkg/machinery/config/generate/secrets"
	"github.com/siderolabs/talos/pkg/machinery/config/machine"
	"github.com/siderolabs/talos/pkg/machinery/config/validation"

	"github.com/imgpipe/imgpipe/internal/fail"
)

// Target says what a patch is validated against: the Talos release, the Kubernetes
// version, the node's role and platform, as a node of that profile would see them.
type Target struct {
	Talos      string // v1.12.11
	Kubernetes string // 1.35.4
	Role       string // controlplane | worker
	Platform   string // metal | nocloud
}

// InvalidPatchError lists what Talos (or imgpipe's checks where Talos checks nothing
// before a node applies the config) refuses in a profile's patch. It is a usage error:
// the fix is in imgpipe.yaml or a patch file.
type InvalidPatchError struct {
	Profile  string
	Target   Target
	Problems []string
}

func (e *InvalidPatchError) Error() string {
	return fmt.Sprintf("profile %s: machine-config patch is invalid for Talos %s (%s, %s): %s",
		e.Profile, e.Target.Talos, e.Target.Platform, e.Target.Role, strings.Join(e.Problems, "; "))
}

// Unwrap makes errors.Is(err, ErrInvalidPatch) and errors.Is(err, fail.ErrUsage) hold.
func (e *InvalidPatchError) Unwrap() []error { return []error{ErrInvalidPatch, fail.ErrUsage} }

// runtimeMode is the validation mode of a platform, as machined derives it: metal
// installs to disk; cloud platforms such as nocloud boot an installed image.
type runtimeMode struct{ platform string }

func (m runtimeMode) String() string        { return m.platform }
func (m runtimeMode) RequiresInstall() bool { return m.platform == "metal" }
func (m runtimeMode) InContainer() bool     { return false }

// Validator checks patches the way `talosctl validate` checks a config made with
// `talosctl gen config --config-patch`: a config generated for the target's release,
// the patches applied with configpatcher, then the runtime validation of the platform
// in strict mode (warnings are errors). It is safe for concurrent use.
//
// The secrets in the generated config are throwaway: nothing but validation sees
// them. They are made once per Validator under the Talos 1.6 contract, whose service
// account key is ECDSA; later contracts make a 4096-bit RSA key, which took 4-6 s
// on a loaded 2-core machine for every run, and no check depends on the key type.
type Validator struct {
	mu     sync.Mutex
	secret *secrets.Bundle
}

// NewValidator returns a Validator; its secrets are made on first use.
func NewValidator() *Validator { return &Validator{} }

func (v *Validator) bundle() (*secrets.Bundle, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.secret != nil {
		return v.secret, nil
	}
	b, err := secrets.NewBundle(secrets.NewFixedClock(time.Now()), config.TalosVersion1_6)
	if err != nil {
		return nil, fmt.Errorf("making throwaway secrets for validation: %w", err)
	}
	v.secret = b
	return b, nil
}

// base generates the config `talosctl gen config` would give a node of t.
func (v *Validator) base(t Target) (config.Provider, error) {
	vc, err := config.ParseContractFromVersion(t.Talos)
	if err != nil {
		return nil, fail.Usage(fmt.Errorf("lock: Talos version %q: %w", t.Talos, err))
	}
	b, err := v.bundle()
	if err != nil {
		return nil, err
	}
	in, err := generate.NewInput("imgpipe-validate", "https://127.0.0.1:6443", strings.TrimPrefix(t.Kubernetes, "v"),
		generate.WithVersionContract(vc), generate.WithSecretsBundle(b), generate.WithInstallDisk("/dev/sda"))
	if err != nil {
		return nil, fmt.Errorf("generating a Talos %s config to validate against: %w", t.Talos, err)
	}
	typ := machine.TypeWorker
	if t.Role == "controlplane" {
		typ = machine.TypeControlPlane
	}
	cfg, err := in.Config(typ)
	if err != nil {
		return nil, fmt.Errorf("generating a Talos %s config to validate against: %w", t.Talos, err)
	}
	return cfg, nil
}

// Validate applies patches, in order, to a config generated for t and validates the
// result. It returns *InvalidPatchError (naming profile and fields) when Talos refuses.
func (v *Validator) Validate(profile string, t Target, patches ...[]byte) error {
	base, err := v.base(t)
	if err != nil {
		return err
	}
	invalid := func(problems ...string) error {
		return &InvalidPatchError{Profile: profile, Target: t, Problems: problems}
	}
	loaded := make([]configpatcher.Patch, 0, len(patches))
	for _, p := range patches {
		lp, err := configpatcher.LoadPatch(p)
		if err != nil {
			return invalid(flatten(err)...)
		}
		loaded = append(loaded, lp)
	}
	out, err := configpatcher.Apply(configpatcher.WithConfig(base), loaded)
	if err != nil {
		return invalid(flatten(err)...)
	}
	cfg, err := out.Config()
	if err != nil {
		return invalid(flatten(err)...)
	}
	var problems []string
	warnings, err := cfg.Validate(runtimeMode{t.Platform}, validation.WithLocal(), validation.WithStrict())
	if err != nil {
		problems = append(problems, flatten(err)...)
	}
	for _, w := range warnings {
		problems = append(problems, "warning (strict): "+w)
	}
	problems = append(problems, gaps(cfg)...)
	problems = append(problems, tooNew(cfg, t.Talos)...)
	if len(problems) > 0 {
		return invalid(problems...)
	}
	return nil
}

// flatten turns machinery's nested multierrors ("invalid machine node labels: 1 error
// occurred:\n\t* name ... is invalid") into one line per problem, each with the
// headings above it, so the message names the field and fits in a CI log line.
func flatten(err error) []string {
	var out, heads []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "*"))
		if line == "" {
			continue
		}
		if m := occurredRE.FindStringIndex(line); m != nil {
			if h := strings.TrimSuffix(strings.TrimSpace(line[:m[0]]), ":"); h != "" {
				heads = append(heads, h)
			}
			continue
		}
		out = append(out, strings.Join(append(heads, line), ": "))
		heads = heads[:0]
	}
	if len(out) == 0 {
		out = []string{err.Error()}
	}
	return out
}

var occurredRE = regexp.MustCompile(`\d+ errors? occurred:$`)

// sysctlRoots are the directories of /proc/sys; a sysctl outside them cannot exist.
var sysctlRoots = []string{"abi", "crypto", "debug", "dev", "fs", "kernel", "net", "sunrpc", "user", "vm"}

// sysctlSegmentRE is one path element of a sysctl: letters, digits, '_', '-' (and
// interface names such as eth0.100 written with '/' in the dotted form).
var sysctlSegmentRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// gaps are the checks Talos leaves to the node at apply time, where a bad value fails
// a controller instead of the config: sysctl names (machined writes
// /proc/sys/<name>) and registry mirror endpoints in the legacy machine.registries
// form (the RegistryMirrorConfig document checks only the scheme).
func gaps(cfg config.Provider) []string {
	var problems []string
	if cfg.Machine() != nil {
		for _, name := range sortedKeys(cfg.Machine().Sysctls()) {
			if err := checkSysctl(name); err != nil {
				problems = append(problems, fmt.Sprintf("machine.sysctls[%q]: %v", name, err))
			}
		}
	}
	mirrors := cfg.RegistryMirrorConfigs()
	for _, host := range sortedKeys(mirrors) {
		for i, ep := range mirrors[host].Endpoints() {
			if err := checkEndpoint(ep.Endpoint()); err != nil {
				problems = append(problems, fmt.Sprintf("registry mirror %s endpoints[%d] %q: %v", host, i, ep.Endpoint(), err))
			}
		}
	}
	return problems
}

// docsFrom are document kinds machinery validates for any contract although older
// releases do not know them: a node of such a release would refuse the config.
var docsFrom = map[string]string{
	"RegistryMirrorConfig": "1.12.0",
	"RegistryAuthConfig":   "1.12.0",
	"RegistryTLSConfig":    "1.12.0",
}

func tooNew(cfg config.Provider, talos string) []string {
	v, err := semver.NewVersion(talos)
	if err != nil {
		return nil
	}
	core, _ := v.SetPrerelease("")
	var problems []string
	for _, d := range cfg.Documents() {
		if from, ok := docsFrom[d.Kind()]; ok && core.LessThan(semver.MustParse(from)) {
			problems = append(problems, fmt.Sprintf("%s documents exist from Talos %s; Talos %s reads machine.registries instead", d.Kind(), from, talos))
		}
	}
	return problems
}

func checkSysctl(name string) error {
	segs := strings.FieldsFunc(name, func(r rune) bool { return r == '.' || r == '/' })
	if len(segs) < 2 || strings.Contains(name, "..") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
		return errors.New("not a sysctl name like net.core.somaxconn")
	}
	if !slices.Contains(sysctlRoots, segs[0]) {
		return fmt.Errorf("no sysctl lives under %s/ (the roots are %s)", segs[0], strings.Join(sysctlRoots, ", "))
	}
	for _, s := range segs {
		if !sysctlSegmentRE.MatchString(s) {
			return fmt.Errorf("%q is not a valid path element (letters, digits, '_' and '-')", s)
		}
	}
	return nil
}

func checkEndpoint(ep string) error {
	u, err := url.Parse(ep)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("scheme %q: use http:// or https://", u.Scheme)
	case u.Host == "" || strings.ContainsAny(u.Host, " \t"):
		return errors.New("no host")
	case u.User != nil:
		return errors.New("credentials in a mirror URL end up in every node's config: use RegistryAuthConfig")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("a mirror endpoint takes no query or fragment")
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
