package site

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/imgpipe/imgpipe/extensions"
	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/internal/yamlx"
)

// DefaultFactory is the public Image Factory.
const DefaultFactory = "https://factory.talos.dev"

var (
	profileNameRE      = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	controlPlaneNameRE = regexp.MustCompile(`^cp([0-9-]|$)`)
	platforms          = []string{"metal", "nocloud"}
	arches             = []string{"amd64", "arm64"}
	bootloaders        = []string{"auto", "dual-boot", "grub", "sd-boot"}
	enrollKeys         = []string{"off", "manual", "if-safe", "force"}
	roles              = []string{"controlplane", "worker"}
	modes              = []string{"auto", "push", "warm"}
	isoMethods         = []string{"download-url", "upload"}
)

// ParseConfig decodes imgpipe.yaml strictly and validates it. name is used in errors
// ("imgpipe.yaml:12: profiles[1].platform: ..."). Errors wrap fail.ErrUsage and list
// every problem found, not just the first.
func ParseConfig(name string, data []byte) (*Config, error) {
	var c Config
	if err := yamlx.Decode(name, data, &c); err != nil {
		return nil, fail.Usage(fmt.Errorf("parsing site config: %w", err))
	}
	if err := c.validate(name, yamlx.NewLocator(data)); err != nil {
		return nil, fail.Usage(fmt.Errorf("validating site config: %w", err))
	}
	c.applyDefaults()
	return &c, nil
}

func (c *Config) validate(file string, loc *yamlx.Locator) error {
	var errs []error
	at := func(msg string, path ...any) { errs = append(errs, yamlx.At(file, loc, msg, path...)) }
	oneOf := func(v string, allowed []string, path ...any) {
		if v != "" && !slices.Contains(allowed, v) {
			at(fmt.Sprintf("%q is not one of %s", v, strings.Join(allowed, ", ")), path...)
		}
	}
	if c.Version != 1 {
		at(fmt.Sprintf("version %d is not supported: set version: 1", c.Version), "version")
	}
	if _, err := ParseReleaseAge(c.MinimumReleaseAge); err != nil {
		at(err.Error(), "minimumReleaseAge")
	}
	if c.Factory.URL != "" {
		if u, err := url.Parse(c.Factory.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			at(fmt.Sprintf("%q is not an http(s) URL", c.Factory.URL), "factory", "url")
		}
	}
	if len(c.Profiles) == 0 {
		at("no profiles: declare at least one (see README: Site config)", "profiles")
	}
	seen := map[string]int{}
	for i, p := range c.Profiles {
		if !profileNameRE.MatchString(p.Name) {
			at(fmt.Sprintf("profile name %q must be lower-case letters, digits and dashes", p.Name), "profiles", i, "name")
		}
		if j, dup := seen[p.Name]; dup {
			at(fmt.Sprintf("profile %q is declared twice (also profiles[%d])", p.Name, j), "profiles", i, "name")
		}
		seen[p.Name] = i
		oneOf(p.Platform, platforms, "profiles", i, "platform")
		oneOf(p.Arch, arches, "profiles", i, "arch")
		oneOf(p.Bootloader, bootloaders, "profiles", i, "bootloader")
		oneOf(p.Role, roles, "profiles", i, "role")
		if p.SecureBoot != nil {
			oneOf(p.SecureBoot.EnrollKeys, enrollKeys, "profiles", i, "secureboot", "enrollKeys")
		}
		if p.Talos != "" {
			if _, err := semver.NewConstraint(strings.ReplaceAll(p.Talos, "v", "")); err != nil {
				at(fmt.Sprintf("Talos constraint %q: %v", p.Talos, err), "profiles", i, "talos")
			}
		}
		if _, err := extensions.ParseDriverConstraint(p.NVIDIADriver); err != nil {
			at(err.Error(), "profiles", i, "nvidiaDriver")
		}
		names := map[string]int{}
		for j, e := range p.Extensions {
			s := extensions.Short(e.Name)
			if s == "" || strings.ContainsAny(s, " /:@") {
				at(fmt.Sprintf("extension name %q is not an official extension name like qemu-guest-agent", e.Name), "profiles", i, "extensions", j, "name")
				continue
			}
			if k, dup := names[s]; dup {
				at(fmt.Sprintf("extension %s is listed twice (also extensions[%d])", s, k), "profiles", i, "extensions", j, "name")
			}
			names[s] = j
		}
		validateSchematicFields(p, i, at)
	}
	oneOf(c.Registries.Mode, modes, "registries", "mode")
	for host, mc := range c.Registries.Mirrors {
		if mc.Endpoint == "" {
			at("endpoint is required", "registries", "mirrors", host, "endpoint")
		}
		oneOf(mc.Mode, modes, "registries", "mirrors", host, "mode")
	}
	oneOf(c.Proxmox.ISOMethod, isoMethods, "proxmox", "isoMethod")
	for i, p := range c.Verify.Policies {
		if p.Match == "" {
			at("match is required", "verify", "policies", i, "match")
		}
		if p.Key == "" && len(p.Identities) == 0 && !p.AllowUnsigned {
			at("a policy needs a key, at least one identity, or allowUnsigned: true", "verify", "policies", i)
		}
	}
	errs = append(errs, c.validatePatches(file, loc)...)
	return errors.Join(errs...)
}

func (c *Config) applyDefaults() {
	if c.Factory.URL == "" {
		c.Factory.URL = DefaultFactory
	}
	c.Factory.URL = strings.TrimRight(c.Factory.URL, "/")
	if c.Factory.Registry == "" {
		if u, err := url.Parse(c.Factory.URL); err == nil {
			c.Factory.Registry = u.Host
		}
	}
	for i := range c.Profiles {
		p := &c.Profiles[i]
		if p.Platform == "" {
			p.Platform = "nocloud"
		}
		if p.Arch == "" {
			p.Arch = "amd64"
		}
		if p.Role == "" {
			p.Role = "worker"
			// "cp", "cp-arm", "cp1" are control planes; "cpu-heavy" is not.
			if controlPlaneNameRE.MatchString(p.Name) || strings.Contains(p.Name, "control") {
				p.Role = "controlplane"
			}
		}
	}
}

// DefaultConfig is the built-in site used when no imgpipe.yaml exists: Proxmox VMs
// (nocloud, amd64) in three profiles.
func DefaultConfig() *Config {
	qga := ExtensionConfig{Name: "qemu-guest-agent"}
	nfs := ExtensionConfig{Name: "nfs-utils", Optional: true}
	c := &Config{
		Version: 1,
		Profiles: []ProfileConfig{
			{Name: "controlplane", Description: "control-plane nodes", Role: "controlplane",
				Extensions: []ExtensionConfig{qga}},
			{Name: "worker", Description: "general workers", Role: "worker",
				Extensions: []ExtensionConfig{qga, nfs}},
			{Name: "gpu", Description: "GPU workers (NVIDIA Turing or newer: open kernel modules)", Role: "worker",
				Extensions: []ExtensionConfig{qga, nfs,
					{Name: "nvidia-open-gpu-kernel-modules-production"},
					{Name: "nvidia-container-toolkit-production"}}},
		},
	}
	c.applyDefaults()
	return c
}

// ResolvePaths makes the config's relative file paths (keys, CA, token file, trusted
// root) relative to dir, the directory of the config file, so that a config means the
// same thing whatever directory imgpipe runs from.
func (c *Config) ResolvePaths(dir string) {
	c.patchDir = dir
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.Proxmox.TokenFile)
	abs(&c.Proxmox.CAFile)
	abs(&c.Verify.TrustedRoot)
	abs(&c.Verify.FactoryKey)
	for i := range c.Verify.Policies {
		abs(&c.Verify.Policies[i].Key)
	}
	for i := range c.Profiles {
		abs(&c.Profiles[i].SchematicFile)
	}
}
