package factory

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/siderolabs/image-factory/pkg/client"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

// Artifact kinds a lock profile has.
const (
	ArtifactISO  = "iso"
	ArtifactDisk = "disk"
)

// Actions reported for an artifact or schematic.
const (
	ActionDownload = "download" // fetched from the factory
	ActionResume   = "resume"   // a partial download continued with Range
	ActionCached   = "cached"   // a verified cached copy was used
	ActionRefetch  = "re-fetch" // a corrupt cached copy was replaced
	ActionEnsured  = "ensured"  // schematic posted and read back with the same ID
	ActionPresent  = "present"  // dry run: the factory already has the schematic
	ActionCreate   = "create"   // dry run: the schematic would be posted
	ActionPrewarm  = "prewarm"  // installer manifest requested (or, dry run, would be)
)

// LockOptions select and shape what the lock-level operations do.
type LockOptions struct {
	// Profiles limits the work to these profiles (nil: all); an unknown name is a usage error.
	Profiles []string
	// Kinds limits FetchLock to these artifact kinds (nil: iso and disk).
	Kinds []string
	// Rebase maps a lock URL or installer reference onto another factory (--factory); nil keeps them.
	Rebase func(string) string
	// DryRun reports what would happen and stops before the first mutation: no POST,
	// no download, no file written (cached copies are still hashed, which only reads).
	DryRun bool
	// Progress receives download and verify progress per artifact.
	Progress func(profile, kind string, p Progress)
	// Recorded runs after FetchLock records each artifact in the lock (e.g. to write
	// the lock), so an interrupted run keeps what it got.
	Recorded func() error
}

func (o LockOptions) rebase(s string) string {
	if o.Rebase == nil {
		return s
	}
	return o.Rebase(s)
}

// ArtifactResult is one artifact FetchLock handled.
type ArtifactResult struct {
	Profile string `json:"profile"`
	Kind    string `json:"kind"`
	Action  string `json:"action"`
	Planned bool   `json:"planned,omitempty"`
	FetchResult
}

// SelectProfiles returns the lock's profiles named in names (all when empty).
func SelectProfiles(l *site.Lock, names []string) ([]*site.Profile, error) {
	if len(names) == 0 {
		out := make([]*site.Profile, len(l.Profiles))
		for i := range l.Profiles {
			out[i] = &l.Profiles[i]
		}
		return out, nil
	}
	var out []*site.Profile
	for _, n := range names {
		p, ok := l.Profile(n)
		if !ok {
			var have []string
			for _, p := range l.Profiles {
				have = append(have, p.Name)
			}
			return nil, fail.Usage(fmt.Errorf("profile %q is not in the lock (profiles: %s)", n, strings.Join(have, ", ")))
		}
		out = append(out, p)
	}
	return out, nil
}

// FetchLock downloads the selected profiles' ISOs and disk images into cache and
// records each in its profile's Artifacts (kind, URL, file, size, sha256, sha512).
// A digest already recorded for the same URL must match (see Fetch). One failing
// artifact does not stop the others; the errors are joined. Cancellation stops at once.
func (c *Client) FetchLock(ctx context.Context, lock *site.Lock, cache Cache, opt LockOptions) ([]ArtifactResult, error) {
	kinds := opt.Kinds
	if len(kinds) == 0 {
		kinds = []string{ArtifactISO, ArtifactDisk}
	}
	for _, k := range kinds {
		if k != ArtifactISO && k != ArtifactDisk {
			return nil, fail.Usage(fmt.Errorf("artifact kind %q: use iso or disk", k))
		}
	}
	sel, err := SelectProfiles(lock, opt.Profiles)
	if err != nil {
		return nil, err
	}
	var results []ArtifactResult
	var errs []error
	for _, p := range sel {
		for _, kind := range kinds {
			lockURL := p.ISO
			if kind == ArtifactDisk {
				lockURL = p.DiskImage
			}
			if lockURL == "" {
				errs = append(errs, fmt.Errorf("profile %s: the lock has no %s URL", p.Name, kind))
				continue
			}
			u := opt.rebase(lockURL)
			fo := FetchOptions{}
			// The lock records the lock's own URL, never the rebased one: a factory
			// override (--factory) is this runner's route, not the site's state.
			if prev := findArtifact(p, kind); prev != nil && (prev.URL == lockURL || prev.URL == u) && prev.SHA256 != "" {
				fo.Expect = &Digests{Size: prev.Size, SHA256: prev.SHA256, SHA512: prev.SHA512}
			}
			if opt.Progress != nil {
				fo.Progress = func(pr Progress) { opt.Progress(p.Name, kind, pr) }
			}
			ar := ArtifactResult{Profile: p.Name, Kind: kind}
			if opt.DryRun {
				ar.FetchResult, ar.Action, err = c.Plan(ctx, cache, u, fo)
				ar.Planned = true
			} else {
				ar.FetchResult, err = c.Fetch(ctx, cache, u, fo)
				ar.Action = actionOf(ar.FetchResult)
			}
			if err != nil {
				if ctx.Err() != nil {
					return results, err
				}
				errs = append(errs, fmt.Errorf("profile %s %s: %w", p.Name, kind, err))
				continue
			}
			results = append(results, ar)
			if opt.DryRun {
				continue
			}
			setArtifact(p, site.Artifact{Kind: kind, URL: lockURL, File: ar.File, Size: ar.Size, SHA256: ar.SHA256, SHA512: ar.SHA512})
			if opt.Recorded != nil {
				if err := opt.Recorded(); err != nil {
					return results, err
				}
			}
		}
	}
	return results, errors.Join(errs...)
}

func actionOf(r FetchResult) string {
	switch {
	case r.Cached:
		return ActionCached
	case r.Repaired:
		return ActionRefetch
	case r.ResumedAt > 0:
		return ActionResume
	}
	return ActionDownload
}

// Plan says what Fetch would do for rawURL (ActionCached, ActionRefetch,
// ActionResume or ActionDownload) without writing anything or contacting the
// factory. A cached copy is hashed to know whether it is intact.
func (c *Client) Plan(ctx context.Context, cache Cache, rawURL string, opt FetchOptions) (FetchResult, string, error) {
	res := FetchResult{URL: rawURL}
	known := opt.Expect
	if known == nil || known.SHA256 == "" {
		if r, err := cache.readRef(rawURL); err == nil {
			known = &r.Digests
		}
	}
	action := ActionDownload
	if known != nil && known.SHA256 != "" {
		blob := cache.BlobPath(known.SHA256)
		got, err := c.hashFile(ctx, blob, rawURL, opt.Progress)
		switch {
		case err == nil && sameDigests(got, *known):
			res.File, res.Digests, res.Cached = blob, got, true
			return res, ActionCached, nil
		case err == nil:
			action, res.Repaired = ActionRefetch, true
		case !errors.Is(err, os.ErrNotExist):
			return res, "", err
		}
	}
	if action == ActionDownload {
		if meta, err := readJSON[partialMeta](cache.partialPath(rawURL) + ".json"); err == nil && meta.URL == rawURL && meta.validator() != "" {
			if st, err := os.Stat(cache.partialPath(rawURL)); err == nil && st.Size() > 0 {
				action, res.ResumedAt = ActionResume, st.Size()
			}
		}
	}
	if known != nil {
		res.Digests = *known
	}
	return res, action, nil
}

func findArtifact(p *site.Profile, kind string) *site.Artifact {
	for i := range p.Artifacts {
		if p.Artifacts[i].Kind == kind {
			return &p.Artifacts[i]
		}
	}
	return nil
}

// setArtifact replaces the profile's artifact of the same kind, keeping kinds sorted.
func setArtifact(p *site.Profile, a site.Artifact) {
	if prev := findArtifact(p, a.Kind); prev != nil {
		*prev = a
		return
	}
	p.Artifacts = append(p.Artifacts, a)
	slices.SortFunc(p.Artifacts, func(x, y site.Artifact) int { return strings.Compare(x.Kind, y.Kind) })
}

// SchematicResult is one profile's schematic as EnsureLock left it.
type SchematicResult struct {
	Profile string `json:"profile"`
	ID      string `json:"id"`
	Factory string `json:"factory"`
	Action  string `json:"action"`
	Planned bool   `json:"planned,omitempty"`
}

// EnsureLock ensures every selected profile's schematic on the factory (see
// EnsureSchematic) and checks that the lock's recorded ID is what its YAML hashes
// to. In a dry run it only GETs each schematic to say whether it would be created.
func (c *Client) EnsureLock(ctx context.Context, lock *site.Lock, opt LockOptions) ([]SchematicResult, error) {
	sel, err := SelectProfiles(lock, opt.Profiles)
	if err != nil {
		return nil, err
	}
	// Check every profile before the first request: bad input changes nothing.
	ids := make([]string, len(sel))
	for i, p := range sel {
		localID, _, err := SchematicID(p.Schematic.YAML)
		if err != nil {
			return nil, fail.Usage(fmt.Errorf("profile %s: %w", p.Name, err))
		}
		if p.Schematic.ID != "" && p.Schematic.ID != localID {
			return nil, fail.Usage(fmt.Errorf("profile %s: the lock records schematic ID %s but its YAML hashes to %s: re-create the lock with `imgpipe resolve --lock`",
				p.Name, p.Schematic.ID, localID))
		}
		ids[i] = localID
	}
	var out []SchematicResult
	for i, p := range sel {
		localID := ids[i]
		r := SchematicResult{Profile: p.Name, ID: localID, Factory: c.BaseURL()}
		if opt.DryRun {
			r.Planned = true
			switch err := c.checkSchematic(ctx, localID); {
			case err == nil:
				r.Action = ActionPresent
			case client.IsHTTPErrorCode(err, http.StatusNotFound):
				r.Action = ActionCreate
			default:
				return out, fmt.Errorf("profile %s: %w", p.Name, err)
			}
			out = append(out, r)
			continue
		}
		if _, err := c.EnsureSchematic(ctx, p.Schematic.YAML); err != nil {
			return out, fmt.Errorf("profile %s: %w", p.Name, err)
		}
		r.Action = ActionEnsured
		out = append(out, r)
	}
	return out, nil
}

// PrewarmLock pre-warms every selected profile's installer (see PrewarmInstaller).
// A dry run lists the references it would request.
func (c *Client) PrewarmLock(ctx context.Context, lock *site.Lock, buildTimeout time.Duration, opt LockOptions) ([]PrewarmResult, error) {
	sel, err := SelectProfiles(lock, opt.Profiles)
	if err != nil {
		return nil, err
	}
	for _, p := range sel {
		if p.Installer == "" {
			return nil, fail.Usage(fmt.Errorf("profile %s has no installer in the lock", p.Name))
		}
	}
	var out []PrewarmResult
	for _, p := range sel {
		ref := opt.rebase(p.Installer)
		if opt.DryRun {
			out = append(out, PrewarmResult{Profile: p.Name, Ref: ref, Planned: true})
			continue
		}
		res, err := c.PrewarmInstaller(ctx, ref, buildTimeout)
		if err != nil {
			return out, fmt.Errorf("profile %s: %w", p.Name, err)
		}
		res.Profile = p.Name
		out = append(out, res)
	}
	return out, nil
}

// CacheDirAbs returns dir made absolute, so paths recorded in a lock stay valid
// from any working directory.
func CacheDirAbs(dir string) (Cache, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Cache{}, fmt.Errorf("resolving cache dir %q: %w", dir, err)
	}
	return Cache{Dir: abs}, nil
}
