package factory_test

import (
	"bytes"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imgpipe/imgpipe"
	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/factory/factorytest"
)

func loadSmall(t *testing.T) (*compat.Matrix, []byte) {
	t.Helper()
	data, err := os.ReadFile("testdata/matrix-small.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := compat.Parse("testdata/matrix-small.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	return m, data
}

func d(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }

func ext(name, tag, digest string) factory.ExtensionInfo {
	return factory.ExtensionInfo{Name: "siderolabs/" + name, Ref: "ghcr.io/siderolabs/" + name + ":" + tag, Digest: digest, Description: "[extra] " + name}
}

// smallLive is what a factory says about the small matrix's releases.
func smallLive() *factory.LiveCatalogs {
	return &factory.LiveCatalogs{
		Factory:     "https://factory.example",
		Versions:    []string{"v1.9.4", "v1.9.5", "v1.9.6", "v1.9.7"},
		Broken:      []string{"v1.9.4"},
		BrokenKnown: true,
		Extensions: map[string][]factory.ExtensionInfo{
			"v1.9.4": {ext("glibc", "2.40", d('a')), ext("qemu-guest-agent", "9.2.0", d('b'))},
			"v1.9.5": {ext("glibc", "2.40", d('1')), ext("qemu-guest-agent", "9.2.0", d('c')), ext("nfsd", "v1.0.0", d('e'))},
			"v1.9.6": {ext("qemu-guest-agent", "9.2.1", "")},
			"v1.9.7": {ext("qemu-guest-agent", "9.2.1", d('f'))},
		},
		Seen: time.Date(2026, 12, 2, 5, 17, 9, 500, time.UTC),
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	base, _ := loadSmall(t)
	got, rep, err := factory.Merge(base, smallLive())
	if err != nil {
		t.Fatalf("Merge() error = %v", err)
	}
	want := []factory.Change{
		{Kind: factory.ChangeBroken, Release: "v1.9.4"},
		{Kind: factory.ChangePinnedDigest, Release: "v1.9.4", Extension: "glibc", New: d('a')},
		{Kind: factory.ChangePinnedDigest, Release: "v1.9.4", Extension: "qemu-guest-agent", New: d('b')},
		{Kind: factory.ChangeRemovedExtension, Release: "v1.9.5", Extension: "util-linux-tools", Old: "2.40.4"},
		{Kind: factory.ChangeAddedExtension, Release: "v1.9.5", Extension: "nfsd", New: "v1.0.0"},
		{Kind: factory.ChangeChangedDigest, Release: "v1.9.5", Extension: "qemu-guest-agent", Old: d('2'), New: d('c')},
		{Kind: factory.ChangeVerified, Release: "v1.9.6"},
		{Kind: factory.ChangedTag, Release: "v1.9.6", Extension: "qemu-guest-agent", Old: "9.2.0", New: "9.2.1"},
		{Kind: factory.ChangeNewRelease, Release: "v1.9.7", New: "1 extensions"},
		{Kind: factory.ChangeNotOffered, Release: "v1.10.0"},
	}
	if !slices.Equal(rep.Changes, want) {
		t.Errorf("Merge() changes =\n%v\nwant\n%v", rep.Changes, want)
	}

	r, ok := got.Release("v1.9.7")
	if !ok {
		t.Fatal("Merge() did not add v1.9.7")
	}
	// Listed by the factory, not broken, not a prerelease: eligible, with firstSeen
	// recorded for a soak period to count from.
	if r.Unverified || !r.Stable() || r.FirstSeen != "2026-12-02T05:17:09Z" || r.Kubernetes != "1.32.4" || !strings.Contains(r.Note, "copied from v1.9.6") {
		t.Errorf("new release v1.9.7 = %+v; want stable, firstSeen 2026-12-02T05:17:09Z, Kubernetes copied from v1.9.6 with a note", r)
	}
	if r5, _ := got.Release("v1.9.5"); r5.Note != "kept by the site" || r5.Date != "2025-03-14" || r5.Images.Installer == "" {
		t.Errorf("v1.9.5 = %+v; want site note, date and images kept", r5)
	}
	// The site's broken flag is kept; unverified is cleared, the factory lists it.
	if r6, _ := got.Release("v1.9.6"); !r6.Broken || r6.Unverified || r6.FirstSeen != "" {
		t.Errorf("v1.9.6 = broken %v unverified %v firstSeen %q; want broken kept, unverified cleared, no firstSeen", r6.Broken, r6.Unverified, r6.FirstSeen)
	}
	if meta := got.Extensions["qemu-guest-agent"]; meta.Note != "site note kept" {
		t.Errorf("extension meta qemu-guest-agent = %+v; want the site note kept", meta)
	}
	if meta, ok := got.Extensions["nfsd"]; !ok || meta.Since != "v1.9.5" || meta.Tier != "extra" {
		t.Errorf("extension meta nfsd = %+v, %v; want since v1.9.5, tier extra from the description", meta, ok)
	}
	if r84, _ := got.Release("v1.8.4"); r84.Extensions["qemu-guest-agent"].Digest != compat.DigestUnknown {
		t.Errorf("v1.8.4 (older than the factory's oldest) changed: %+v", r84)
	}

	// Refreshing the refreshed matrix changes nothing and encodes identically.
	again, rep2, err := factory.Merge(got, smallLive())
	if err != nil {
		t.Fatal(err)
	}
	var changes []factory.Change
	for _, c := range rep2.Changes {
		if c.Kind != factory.ChangeNotOffered {
			changes = append(changes, c)
		}
	}
	if len(changes) != 0 {
		t.Errorf("second Merge() changes = %v; want none", changes)
	}
	a, _ := compat.Marshal(got)
	b, _ := compat.Marshal(again)
	if !bytes.Equal(a, b) {
		t.Errorf("second Merge() output differs from the first")
	}
}

func TestMergeMinimalDiff(t *testing.T) {
	t.Parallel()
	base, raw := loadSmall(t)
	live := &factory.LiveCatalogs{Factory: "https://factory.example", Filtered: true, Versions: []string{"v1.9.5"},
		Extensions: map[string][]factory.ExtensionInfo{"v1.9.5": {
			ext("glibc", "2.40", d('1')), ext("qemu-guest-agent", "9.2.0", d('9')), ext("util-linux-tools", "2.40.4", ""),
		}}}
	got, rep, err := factory.Merge(base, live)
	if err != nil {
		t.Fatal(err)
	}
	out, err := compat.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var diff []string
	ol, nl := strings.Split(string(raw), "\n"), strings.Split(string(out), "\n")
	if len(ol) != len(nl) {
		t.Fatalf("refresh changed the line count: %d -> %d:\n%s", len(ol), len(nl), out)
	}
	for i := range ol {
		if ol[i] != nl[i] {
			diff = append(diff, nl[i])
		}
	}
	// The digest line, and the source line saying where the data came from.
	if len(diff) != 2 || !strings.Contains(diff[1], d('9')) || !strings.Contains(diff[0], "refreshed from https://factory.example") {
		t.Errorf("changed lines = %q; want the source and the one digest", diff)
	}
	if len(rep.Changes) != 1 || rep.Changes[0].Kind != factory.ChangeChangedDigest {
		t.Errorf("changes = %v; want one changed digest", rep.Changes)
	}
}

func TestRefreshAgainstFake(t *testing.T) {
	t.Parallel()
	base, err := compat.Parse(imgpipe.MatrixName, imgpipe.MatrixYAML)
	if err != nil {
		t.Fatal(err)
	}
	cat := factorytest.ReferenceCatalog()
	cat.Broken = []string{"v1.10.1"}
	f := factorytest.New(t, factorytest.Options{Catalog: cat})
	f.Inject(factorytest.RouteExtensions, factorytest.Fault{Status: 500}, factorytest.Fault{Status: 429, RetryAfter: "0"})
	c := newClient(t, f)
	got, rep, err := c.Refresh(t.Context(), base, factory.RefreshOptions{Since: "v1.9.0"})
	if err != nil {
		t.Fatalf("Refresh() error = %v", err)
	}
	r, _ := got.Release("v1.11.2")
	if e := r.Extensions["qemu-guest-agent"]; e.Tag != "10.0.2" || e.Digest != "sha256:9720300de00544eca155bc19369dfd7789d39a0e23d72837a7188f199e13dc6c" {
		t.Errorf("v1.11.2 qemu-guest-agent = %+v; want the reference tag and digest", e)
	}
	if r, _ := got.Release("v1.10.1"); !r.Broken {
		t.Errorf("v1.10.1 not marked broken after refresh")
	}
	if r, _ := got.Release("v1.8.4"); r.Extensions["qemu-guest-agent"].Digest != compat.DigestUnknown {
		t.Errorf("v1.8.4 (before --since) was changed")
	}
	var pinned int
	for _, ch := range rep.Changes {
		if ch.Kind == factory.ChangePinnedDigest {
			pinned++
		}
		if versionBefore(ch.Release, "v1.9.0") {
			t.Errorf("change %v is older than since v1.9.0", ch)
		}
	}
	if pinned == 0 {
		t.Errorf("Refresh() pinned no digests; want the factory's digests filled in")
	}
	// Deterministic: the same factory gives the same bytes.
	again, _, err := c.Refresh(t.Context(), base, factory.RefreshOptions{Since: "v1.9.0"})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := compat.Marshal(got)
	b, _ := compat.Marshal(again)
	if !bytes.Equal(a, b) {
		t.Errorf("two refreshes against the same factory differ")
	}
}

func versionBefore(a, b string) bool {
	return a < b && len(a) == len(b) // good enough for v1.x.y with one-digit minors used here
}

func TestRefreshDegradesWithoutBroken(t *testing.T) {
	t.Parallel()
	base, _ := loadSmall(t)
	cat := factorytest.Catalog{Versions: []string{"v1.9.5"}, Broken: []string{"v1.9.5"},
		Extensions: map[string][]factory.ExtensionInfo{"v1.9.5": {ext("qemu-guest-agent", "9.2.0", d('2'))}}}
	f := factorytest.New(t, factorytest.Options{Catalog: cat, IgnoreBroken: true})
	got, rep, err := newClient(t, f).Refresh(t.Context(), base, factory.RefreshOptions{})
	if err != nil {
		t.Fatalf("Refresh() on a factory without broken versions error = %v; want a note, not a failure", err)
	}
	if len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], "broken") {
		t.Errorf("notes = %v; want one about broken versions", rep.Notes)
	}
	if r, _ := got.Release("v1.9.5"); r.Broken {
		t.Errorf("v1.9.5 marked broken although the factory cannot tell")
	}
}

func TestCatalogImageCrossCheck(t *testing.T) {
	t.Parallel()
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	digests := "ghcr.io/siderolabs/qemu-guest-agent:9.2.0@" + d('2') + "\n" +
		"ghcr.io/siderolabs/glibc:2.40@" + d('7') + "\n" +
		"ghcr.io/siderolabs/iscsi-tools:v0.1.6@" + d('8') + "\n"
	img, err := crane.Image(map[string][]byte{"image-digests": []byte(digests), "descriptions.yaml": []byte("{}\n")})
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/siderolabs/extensions:v1.9.5"
	if err := crane.Push(img, ref); err != nil {
		t.Fatal(err)
	}
	entries, err := factory.ReadCatalogImage(t.Context(), ref, true, remote.WithTransport(reg.Client().Transport))
	if err != nil {
		t.Fatalf("ReadCatalogImage(%q) error = %v", ref, err)
	}
	if len(entries) != 3 || entries[0].Name != "qemu-guest-agent" {
		t.Fatalf("ReadCatalogImage(%q) = %+v; want 3 entries", ref, entries)
	}
	got := factory.CrossCheck("v1.9.5", []factory.ExtensionInfo{ext("qemu-guest-agent", "9.2.0", d('2')), ext("glibc", "2.40", d('1')), ext("nfsd", "v1", d('3'))}, entries)
	var names []string
	for _, c := range got {
		names = append(names, c.Extension)
	}
	if want := []string{"glibc", "nfsd", "iscsi-tools"}; !slices.Equal(names, want) {
		t.Errorf("CrossCheck() = %v; want mismatches for %v", got, want)
	}

	empty, _ := crane.Image(map[string][]byte{"other": []byte("x")})
	if err := crane.Push(empty, host+"/siderolabs/extensions:v0"); err != nil {
		t.Fatal(err)
	}
	if _, err := factory.ReadCatalogImage(t.Context(), host+"/siderolabs/extensions:v0", true); err == nil {
		t.Errorf("ReadCatalogImage(no image-digests) error = nil; want ErrNoImageDigests")
	}
}
