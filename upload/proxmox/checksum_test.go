package proxmox

import (
	"testing"
)

// TestLockChecksumsWithAlgorithmPrefix feeds the lock as `imgpipe fetch` writes it,
// "sha256:<hex>", to both transfer methods: PVE must get bare hex, or its checksum
// check fails every ISO and the compressed disk image is refused as corrupt.
func TestLockChecksumsWithAlgorithmPrefix(t *testing.T) {
	t.Parallel()
	for _, method := range []string{MethodDownloadURL, MethodUpload} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			f := newFixture(t, e.dir, "v1.9.5")
			for i := range f.lock.Profiles[0].Artifacts {
				a := &f.lock.Profiles[0].Artifacts[i]
				a.SHA256 = "sha256:" + a.SHA256
			}
			if _, err := e.c.UploadISOs(t.Context(), cfgFor(method), f.lock, RunOptions{Keep: -1}); err != nil {
				t.Fatalf("UploadISOs(%s) with sha256:-prefixed lock checksums: %v", method, err)
			}
			if _, err := e.c.BuildTemplates(t.Context(), cfgFor(method), f.lock, RunOptions{Keep: -1}); err != nil {
				t.Fatalf("BuildTemplates(%s) with sha256:-prefixed lock checksums: %v", method, err)
			}
			vols := map[string]string{}
			for _, v := range e.srv.Volumes() {
				vols[v.Content] = v.SHA256
			}
			if vols["iso"] != sha(f.iso) || vols["import"] != sha(f.raw) {
				t.Errorf("PVE volumes = %v; want the ISO (%s) and the decompressed disk (%s)", vols, sha(f.iso), sha(f.raw))
			}
		})
	}
}
