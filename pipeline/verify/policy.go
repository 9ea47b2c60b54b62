package verify

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

// Signing identities of Sidero Labs (reference talos-data.md §5, image-factory
// cmd/image-factory/cmd/options.go): ghcr.io/siderolabs images are signed keyless through
// Google OIDC by a @siderolabs.com account or the release GSA; Image Factory installers
// are signed with the factory's key, or (image-factory ≥ v1.1.0) keyless by its GSA.
const (
	GoogleIssuer          = "https://accounts.google.com"
	SideroSubjectRegExp   = `(@siderolabs\.com$|^releasemgr-svc@talos-production\.iam\.gserviceaccount\.com$)`
	FactoryKeylessSubject = "image-factory-signing@talos-production.iam.gserviceaccount.com"

	// SideroMatch is the repository glob the built-in Sidero policy covers.
	SideroMatch = "ghcr.io/siderolabs/**"
)

// Names of the built-in policies, as they appear in the policy column.
const (
	PolicySidero  = "sidero"
	PolicyFactory = "factory"
)

// ErrNoIdentity is returned for a keyless policy or identity without an issuer or a
// subject constraint: cosign would accept any certificate chaining to the trust root.
var ErrNoIdentity = errors.New("keyless identity needs an issuer and a subject (exact or regexp)")

// Identity is one keyless signer: the OIDC issuer and the certificate subject (email or
// URI SAN), each exact or as a regular expression.
type Identity struct {
	Issuer        string `json:"issuer,omitempty"`
	IssuerRegExp  string `json:"issuer_regexp,omitempty"`
	Subject       string `json:"subject,omitempty"`
	SubjectRegExp string `json:"subject_regexp,omitempty"`
}

func (id Identity) String() string {
	subject, issuer := id.Subject, id.Issuer
	if id.SubjectRegExp != "" {
		subject = "~" + id.SubjectRegExp
	}
	if id.IssuerRegExp != "" {
		issuer = "~" + id.IssuerRegExp
	}
	return subject + " (" + issuer + ")"
}

// Validate refuses an identity that leaves the issuer or the subject open, and bad regexps.
func (id Identity) Validate() error {
	if (id.Issuer == "" && id.IssuerRegExp == "") || (id.Subject == "" && id.SubjectRegExp == "") {
		return fmt.Errorf("identity %+v: %w", id, ErrNoIdentity)
	}
	for _, re := range []string{id.IssuerRegExp, id.SubjectRegExp} {
		if re == "" {
			continue
		}
		if _, err := regexp.Compile(re); err != nil {
			return fmt.Errorf("identity regexp %q: %w", re, err)
		}
	}
	return nil
}

// Key is a trusted public key and where it came from (file or URL), which is what the
// signer column shows together with the key's fingerprint.
type Key struct {
	Name        string
	Fingerprint string // first 16 hex digits of the SHA-256 of the PKIX public key
	verifier    signature.Verifier
}

func (k Key) String() string { return "key " + k.Name + " (sha256:" + k.Fingerprint + ")" }

// ParsePublicKey reads a PEM public key (ECDSA, RSA or Ed25519, as cosign accepts them).
// name says where it came from, for errors and the signer column.
func ParsePublicKey(name string, pemBytes []byte) (Key, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return Key{}, fmt.Errorf("reading public key %s: %w", name, err)
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return Key{}, fmt.Errorf("reading public key %s: %w", name, err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return Key{}, fmt.Errorf("reading public key %s: %w", name, err)
	}
	sum := sha256.Sum256(der)
	return Key{Name: name, Fingerprint: hex.EncodeToString(sum[:8]), verifier: v}, nil
}

// Policy says how the images whose repository matches one of Match must be signed: by
// one of Keys, or keyless by one of Identities. AllowUnsigned lets an image without any
// signature pass (an invalid signature still fails); with neither keys nor identities
// it skips the check altogether.
type Policy struct {
	Name          string
	Match         []string
	Keys          []Key
	Identities    []Identity
	AllowUnsigned bool
	// Note is shown as the reason of --dry-run rows, e.g. where a key will come from.
	Note string
}

// Validate checks the policy before any image is looked at.
func (p *Policy) Validate() error {
	if len(p.Match) == 0 {
		return fmt.Errorf("policy %s: no match pattern", p.Name)
	}
	for _, m := range p.Match {
		prefix, double := strings.CutSuffix(m, "**")
		if double && prefix != "" && !strings.HasSuffix(prefix, "/") {
			return fmt.Errorf("policy %s: match %q: ** must follow a slash, as in ghcr.io/siderolabs/**", p.Name, m)
		}
		if _, err := path.Match(prefix, ""); err != nil {
			return fmt.Errorf("policy %s: match %q: %w", p.Name, m, err)
		}
	}
	if len(p.Keys) == 0 && len(p.Identities) == 0 && !p.AllowUnsigned {
		return fmt.Errorf("policy %s: give a key or an identity, or set allowUnsigned: %w", p.Name, ErrNoIdentity)
	}
	for _, id := range p.Identities {
		if err := id.Validate(); err != nil {
			return fmt.Errorf("policy %s: %w", p.Name, err)
		}
	}
	return nil
}

// Matches reports whether the policy covers the image reference. Patterns are path.Match
// globs on the repository ("ghcr.io/siderolabs/installer"); a trailing "**" matches any
// rest. Both sides are compared in canonical form (site.CanonicalRegistry): the host
// lower-cased, ":443" dropped, Docker Hub's aliases folded to docker.io, so a reference
// spelled GHCR.IO/... or ghcr.io:443/... is covered by ghcr.io/** like any other.
func (p *Policy) Matches(ref name.Reference) bool {
	repo := ref.Context()
	canon := site.CanonicalRegistry(repo.RegistryStr()) + "/" + repo.RepositoryStr()
	for _, m := range p.Match {
		if globMatch(canonicalPattern(m), canon) {
			return true
		}
	}
	return false
}

// canonicalPattern puts a match pattern's host in canonical form, unless the host part
// is itself a glob.
func canonicalPattern(m string) string {
	host, rest, ok := strings.Cut(m, "/")
	if !ok || strings.ContainsAny(host, "*?[\\") {
		return m
	}
	return site.CanonicalRegistry(host) + "/" + rest
}

func globMatch(pattern, s string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "**"); ok {
		if prefix == "" {
			return true
		}
		// "ghcr.io/siderolabs/**": the part before ** is itself a glob on a path prefix.
		n := strings.Count(prefix, "/")
		parts := strings.SplitAfterN(s, "/", n+1)
		if len(parts) <= n {
			return false
		}
		ok, _ := path.Match(prefix, strings.Join(parts[:n], ""))
		return ok
	}
	ok, _ := path.Match(pattern, s)
	return ok
}

// SideroPolicy is the built-in policy for ghcr.io/siderolabs/*: keyless, Google issuer,
// Sidero subjects.
func SideroPolicy() Policy {
	return Policy{
		Name:       PolicySidero,
		Match:      []string{SideroMatch},
		Identities: []Identity{{Issuer: GoogleIssuer, SubjectRegExp: SideroSubjectRegExp}},
	}
}

// FactoryPolicy is the built-in policy for installers generated by Image Factory: the
// factory's signing key (from --factory-key or <factory>/oci/cosign/signing-key.pub), or
// the factory GSA's keyless identity used by newer factories. hosts are the factory
// registry hosts ("factory.talos.dev"); key may be nil when the factory serves none.
func FactoryPolicy(hosts []string, key *Key) Policy {
	p := Policy{
		Name:       PolicyFactory,
		Identities: []Identity{{Issuer: GoogleIssuer, Subject: FactoryKeylessSubject}},
	}
	for _, h := range hosts {
		p.Match = append(p.Match, h+"/**")
	}
	if key != nil {
		p.Keys = []Key{*key}
	}
	return p
}

// FactoryHosts returns the registry hosts of a factory: the host of its URL
// ("https://factory.talos.dev" -> "factory.talos.dev") and, if set, the configured
// registry host its installer references use.
func FactoryHosts(factoryURL, registry string) ([]string, error) {
	var hosts []string
	if factoryURL != "" {
		u, err := url.Parse(factoryURL)
		if err != nil || u.Host == "" {
			return nil, fail.Usage(fmt.Errorf("factory URL %q: want https://host[:port]", factoryURL))
		}
		hosts = append(hosts, u.Host)
	}
	if registry != "" && (len(hosts) == 0 || hosts[0] != registry) {
		hosts = append(hosts, registry)
	}
	return hosts, nil
}

// PoliciesFromConfig turns imgpipe.yaml's verify.policies into policies, reading key
// files through readFile. Errors name the policy entry and wrap fail.ErrUsage.
func PoliciesFromConfig(cfg site.VerifyConfig, readFile func(string) ([]byte, error)) ([]Policy, error) {
	var out []Policy
	var errs []error
	for i, pc := range cfg.Policies {
		p := Policy{
			Name:          fmt.Sprintf("config[%d]:%s", i, pc.Match),
			AllowUnsigned: pc.AllowUnsigned,
		}
		if pc.Match != "" {
			p.Match = []string{pc.Match}
		}
		if pc.Key != "" {
			data, err := readFile(pc.Key)
			if err != nil {
				errs = append(errs, fmt.Errorf("verify.policies[%d].key: %w", i, err))
				continue
			}
			k, err := ParsePublicKey(pc.Key, data)
			if err != nil {
				errs = append(errs, fmt.Errorf("verify.policies[%d].key: %w", i, err))
				continue
			}
			p.Keys = append(p.Keys, k)
		}
		for _, id := range pc.Identities {
			p.Identities = append(p.Identities, Identity(id))
		}
		if err := p.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("verify.policies[%d]: %w", i, err))
			continue
		}
		out = append(out, p)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fail.Usage(err)
	}
	return out, nil
}
