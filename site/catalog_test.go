package site_test

import (
	"bufio"
	"errors"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/imgpipe/imgpipe/compat"

	"github.com/imgpipe/imgpipe/extensions"
	"github.com/imgpipe/imgpipe/internal/testutil"
	"github.com/imgpipe/imgpipe/site"
)

// catalogRefs reads testdata/reference/extensions-catalog.tsv (the reference catalog's
// rows, as copyref copies them): release -> short name -> ref.
func catalogRefs(t *testing.T) (map[string]map[string]string, []string) {
	t.Helper()
	f, err := os.Open(testutil.ReferencePath(t, "extensions-catalog.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string]string{}
	names := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if strings.HasPrefix(sc.Text(), "#") || len(c) != 6 {
			continue
		}
		if out[c[0]] == nil {
			out[c[0]] = map[string]string{}
		}
		short := extensions.Short(c[2])
		out[c[0]][short] = c[3]
		names[short] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out, slices.Sorted(func(yield func(string) bool) {
		for n := range names {
			if !yield(n) {
				return
			}
		}
	})
}

// TestResolveWholeCatalog resolves every extension name of the catalog at every
// release of the catalog, one single-extension profile each: where the release lists
// the name, the ref is the catalog's; where it does not, the profile is refused with
// a reason (or, for a renamed extension, resolved to the new name with a note).
func TestResolveWholeCatalog(t *testing.T) {
	t.Parallel()
	m := embeddedMatrix(t)
	catalog, names := catalogRefs(t)
	if len(catalog) != 66 || len(names) != 92 {
		t.Fatalf("catalog has %d releases and %d names; want 66 and 92", len(catalog), len(names))
	}
	var checked, refused atomic.Int32
	t.Cleanup(func() {
		if n := checked.Load(); n != 4346 && !t.Failed() {
			t.Errorf("checked %d (release, extension) refs; want the catalog's 4346", n)
		}
		t.Logf("refs checked: %d, unavailable pairs refused: %d", checked.Load(), refused.Load())
	})
	for v, refs := range catalog {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			resolveCatalogRelease(t, m, v, refs, names, &checked, &refused)
		})
	}
}

func resolveCatalogRelease(t *testing.T, m *compat.Matrix, v string, refs map[string]string, names []string, checked, refused *atomic.Int32) {
	t.Helper()
	for _, name := range names {
		list := []string{name}
		if rest, ok := strings.CutPrefix(name, "nvidia-container-toolkit"); ok {
			// The pairing gate wants kernel modules of the same tier beside a toolkit.
			list = append(list, "nvidia-open-gpu-kernel-modules"+rest+"?")
		}
		cfg := siteConfig(site.ProfileConfig{Name: "p", Extensions: exts(list...)})
		lock, err := site.Resolve(m, cfg, site.ResolveOptions{Talos: v})
		want, listed := refs[name]
		switch {
		case listed && err != nil:
			t.Errorf("Resolve(%s, %s) = %v; want the catalog's %s", v, name, err, want)
		case listed:
			i := slices.IndexFunc(lock.Profiles[0].Extensions, func(e site.Extension) bool { return e.Name == extensions.Full(name) })
			if i < 0 {
				t.Errorf("Resolve(%s, %s) = %+v; want it in the profile", v, name, lock.Profiles[0].Extensions)
			} else if got := lock.Profiles[0].Extensions[i].Ref; got != want {
				t.Errorf("Resolve(%s, %s) ref = %s; want %s", v, name, got, want)
			}
			checked.Add(1)
		case err == nil:
			// Only a rename may make an unlisted name resolve: to a listed one, with a note.
			got := extensions.Short(lock.Profiles[0].Extensions[len(lock.Profiles[0].Extensions)-1].Name)
			if _, ok := refs[got]; !ok || got == name || len(lock.Profiles[0].Notes) == 0 {
				t.Errorf("Resolve(%s, %s) = %s, nil (notes %q); want a refusal", v, name, got, lock.Profiles[0].Notes)
			}
		default:
			if !errors.Is(err, site.ErrRequiredExtension) && !errors.Is(err, extensions.ErrPairing) {
				t.Errorf("Resolve(%s, %s) = %v; want ErrRequiredExtension", v, name, err)
			}
			if msg := err.Error(); !strings.Contains(msg, name) || !hasReason(msg) {
				t.Errorf("Resolve(%s, %s) = %q; want a reason naming it", v, name, msg)
			}
			refused.Add(1)
		}
	}
}

func hasReason(msg string) bool {
	for _, r := range []string{"exists from", "last published for", "NVIDIA tiers", "predates the lts/production split", "is not in the Talos"} {
		if strings.Contains(msg, r) {
			return true
		}
	}
	return false
}
