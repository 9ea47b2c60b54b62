package extensions_test

import (
	"github.com/imgpipe/imgpipe/internal/testutil"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/extensions"
)

func TestParseImageDigestsReal(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/image-digests-v1.11.2.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, err := extensions.ParseImageDigests(data)
	if err != nil {
		t.Fatalf("ParseImageDigests(v1.11.2 excerpt) = %v; want nil", err)
	}
	if len(got) != 11 {
		t.Fatalf("ParseImageDigests(v1.11.2 excerpt) has %d entries; want 11", len(got))
	}
	want := map[string]extensions.CatalogEntry{
		"qemu-guest-agent": {Name: "qemu-guest-agent", Repo: "ghcr.io/siderolabs/qemu-guest-agent", Tag: "10.0.2",
			Digest: "sha256:9720300de00544eca155bc19369dfd7789d39a0e23d72837a7188f199e13dc6c"},
		"nvidia-open-gpu-kernel-modules-lts": {Name: "nvidia-open-gpu-kernel-modules-lts", Repo: "ghcr.io/siderolabs/nvidia-open-gpu-kernel-modules-lts",
			Tag: "535.247.01-v1.11.2", Digest: "sha256:69fafd7fa4b708226672d2334670bfbb0004fced548d6a0b2fab9807517c7971"},
		"nvidia-container-toolkit-production": {Name: "nvidia-container-toolkit-production", Repo: "ghcr.io/siderolabs/nvidia-container-toolkit-production",
			Tag: "570.172.08-v1.17.8", Digest: "sha256:eff6eb15bb5ceabe84904a6d62f872d5547bb98fdf78f119297f739fd775973d"},
		"nvidia-fabricmanager-lts": {Name: "nvidia-fabricmanager-lts", Repo: "ghcr.io/siderolabs/nvidia-fabricmanager-lts",
			Tag: "535.247.01", Digest: "sha256:aaf3d09e87ef9a0bfa2522775ba7518b30ccac4b909d8d2d739a24410daba769"},
	}
	for _, e := range got {
		if w, ok := want[e.Name]; ok && e != w {
			t.Errorf("ParseImageDigests entry %s = %+v; want %+v", e.Name, e, w)
		}
		delete(want, e.Name)
		if _, err := extensions.ParseTag(e.Name, e.Tag); err != nil {
			t.Errorf("ParseTag(%q, %q) = %v; want nil", e.Name, e.Tag, err)
		}
	}
	for name := range want {
		t.Errorf("ParseImageDigests(v1.11.2 excerpt) lacks %s", name)
	}
}

func TestParseImageDigestsMalformed(t *testing.T) {
	t.Parallel()
	good := "ghcr.io/siderolabs/qemu-guest-agent:10.0.2@sha256:9720300de00544eca155bc19369dfd7789d39a0e23d72837a7188f199e13dc6c"
	hex := strings.Repeat("a", 64)
	tests := []struct {
		name  string
		input string
		n     int    // entries still returned
		want  string // substring of the error; "" means nil
	}{
		{"blank lines and CRLF", "\n" + good + "\r\n\n  " + good + "  \n", 2, ""},
		{"registry with port", "localhost:5000/ext/foo:v1@sha256:" + hex + "\n", 1, ""},
		{"no digest", "ghcr.io/siderolabs/foo:1.0\n", 0, "line 1"},
		{"no tag", "ghcr.io/siderolabs/foo@sha256:" + hex, 0, "line 1"},
		{"short digest", good + "\nghcr.io/siderolabs/foo:1@sha256:abc\n", 1, "line 2"},
		{"upper-case hex", "ghcr.io/siderolabs/foo:1@sha256:" + strings.Repeat("A", 64), 0, "line 1"},
		{"sha512", "ghcr.io/siderolabs/foo:1@sha512:" + hex, 0, "line 1"},
		{"comment", "# image-digests\n" + good, 1, "line 1"},
		{"no repository path", "foo:1@sha256:" + hex, 0, "line 1"},
		{"two bad lines", "x\n" + good + "\ny\n", 1, "line 3"},
	}
	for _, tt := range tests {
		got, err := extensions.ParseImageDigests([]byte(tt.input))
		if len(got) != tt.n {
			t.Errorf("ParseImageDigests(%s) returned %d entries; want %d", tt.name, len(got), tt.n)
		}
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("ParseImageDigests(%s) = %v; want nil", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("ParseImageDigests(%s) = %v; want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestFromFactory(t *testing.T) {
	t.Parallel()
	got, err := extensions.FromFactory([]extensions.FactoryExtension{
		{Name: "siderolabs/qemu-guest-agent", Ref: "ghcr.io/siderolabs/qemu-guest-agent:10.0.2", Digest: "sha256:9720300de00544eca155bc19369dfd7789d39a0e23d72837a7188f199e13dc6c"},
		{Name: "siderolabs/nfs-utils", Ref: "ghcr.io/siderolabs/nfs-utils:v0.1.1"},
	})
	if err != nil {
		t.Fatalf("FromFactory = %v; want nil", err)
	}
	want := map[string]compat.ExtensionTag{
		"qemu-guest-agent": {Tag: "10.0.2", Digest: "sha256:9720300de00544eca155bc19369dfd7789d39a0e23d72837a7188f199e13dc6c"},
		"nfs-utils":        {Tag: "v0.1.1", Digest: compat.DigestUnknown},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FromFactory = %v; want %v", got, want)
	}
	for _, ref := range []string{"ghcr.io/siderolabs/foo", "localhost:5000/siderolabs/foo"} {
		if _, err := extensions.FromFactory([]extensions.FactoryExtension{{Name: "siderolabs/foo", Ref: ref}}); err == nil {
			t.Errorf("FromFactory(ref %q) = nil error; want an error (no tag)", ref)
		}
	}
}

func FuzzParseImageDigests(f *testing.F) {
	testutil.SeedFiles(f, "testdata/*.txt")
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := extensions.ParseImageDigests(data)
		if err != nil {
			return
		}
		var b strings.Builder
		for _, e := range got {
			if e.Name != e.Repo[strings.LastIndex(e.Repo, "/")+1:] {
				t.Fatalf("entry %+v: Name is not the last path element of Repo", e)
			}
			b.WriteString(e.Repo + ":" + e.Tag + "@" + e.Digest + "\n")
		}
		again, err := extensions.ParseImageDigests([]byte(b.String()))
		if err != nil {
			t.Fatalf("ParseImageDigests(rendered entries) = %v; want nil", err)
		}
		if !reflect.DeepEqual(got, again) && (len(got) != 0 || len(again) != 0) {
			t.Fatalf("round trip: %+v; want %+v", again, got)
		}
	})
}
