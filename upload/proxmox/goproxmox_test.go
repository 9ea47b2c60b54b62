package proxmox

import (
	"path/filepath"
	"strings"
	"testing"

	proxmox "github.com/luthermonson/go-proxmox"
)

// TestGoProxmoxUploadOrderGap shows why uploads are imgpipe's own code: go-proxmox
// v0.8.2's UploadWithHash writes the form fields in Go map order, which the fake
// (like PVE's parser) rejects unless it happens to be content, checksum-algorithm,
// checksum; imgpipe's Upload is accepted every time.
func TestGoProxmoxUploadOrderGap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	data := pattern(64<<10, 9)
	file := filepath.Join(e.dir, "t.iso")
	writeFile(t, file, data)
	api := proxmox.NewClient(e.srv.URL, proxmox.WithHTTPClient(e.c.hc), proxmox.WithAPIToken(e.srv.TokenID(), e.srv.Secret()))
	st, err := (&proxmox.Node{}).New(api, "pve1").Storage(t.Context(), "local")
	if err != nil {
		t.Fatalf("go-proxmox Storage: %v", err)
	}
	const tries = 12
	rejected := 0
	for i := range tries {
		name := strings.Replace(isoName(t, "v1.9.5"), ".iso", "-"+string(rune('a'+i))+".iso", 1)
		if _, err := st.UploadWithHash("iso", file, &name, sha(data), "sha256"); err != nil {
			rejected++
		}
	}
	if rejected == 0 {
		t.Errorf("go-proxmox UploadWithHash: %d/%d accepted; want some rejected for field order (is the fake too lax?)", tries, tries)
	}
	for i := range tries {
		name := strings.Replace(isoName(t, "v1.9.6"), ".iso", "-"+string(rune('a'+i))+".iso", 1)
		if _, err := e.c.Upload(t.Context(), UploadRequest{Node: "pve1", Storage: "local", Content: "iso", Filename: name,
			Body: strings.NewReader(string(data)), Size: int64(len(data)), Checksum: sha(data), Algorithm: "sha256"}); err != nil {
			t.Errorf("Upload try %d: %v; want accepted", i, err)
		}
	}
	t.Logf("go-proxmox UploadWithHash rejected %d/%d; imgpipe Upload accepted %d/%d", rejected, tries, tries, tries)
}
