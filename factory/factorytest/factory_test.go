package factorytest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/factory/factorytest"
)

const qemuID = "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"

func do(t *testing.T, method, url, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

func TestSchematicsUseTheRealIDRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, wantID string
		opts               factorytest.Options
		wantStatus         int
	}{
		{name: "yaml", body: "customization:\n  systemExtensions:\n    officialExtensions: [siderolabs/qemu-guest-agent]\n", wantID: qemuID, wantStatus: 201},
		{name: "json", body: `{"customization":{"systemExtensions":{"officialExtensions":["siderolabs/qemu-guest-agent"]}}}`, wantID: qemuID, wantStatus: 201},
		{name: "empty", body: "{}", wantID: "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba", wantStatus: 201},
		{name: "unknown field", body: "customization:\n  bogus: 1\n", wantStatus: 400},
		{name: "owner on a community factory", body: "owner: bob\ncustomization: {}\n", wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := factorytest.New(t, tt.opts)
			resp, data := do(t, http.MethodPost, f.URL()+"/schematics", tt.body, nil)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("POST /schematics(%s) = %d %s; want %d", tt.name, resp.StatusCode, data, tt.wantStatus)
			}
			if tt.wantStatus != 201 {
				return
			}
			var got struct{ ID, Schematic string }
			if err := json.Unmarshal(data, &got); err != nil || got.ID != tt.wantID {
				t.Fatalf("POST /schematics(%s) = %s, %v; want id %s", tt.name, data, err, tt.wantID)
			}
			resp, yaml := do(t, http.MethodGet, f.URL()+"/schematics/"+got.ID, "", nil)
			if resp.StatusCode != 200 || string(yaml) != got.Schematic || resp.Header.Get("Content-Type") != "application/yaml" {
				t.Errorf("GET /schematics/%s = %d %q; want 200 with the canonical YAML %q", got.ID, resp.StatusCode, yaml, got.Schematic)
			}
		})
	}
}

func TestEnterpriseOwnerChangesTheID(t *testing.T) {
	t.Parallel()
	f := factorytest.New(t, factorytest.Options{Owner: "alice"})
	_, data := do(t, http.MethodPost, f.URL()+"/schematics", "customization: {}\n", nil)
	if strings.Contains(string(data), "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba") || !strings.Contains(string(data), "owner: alice") {
		t.Errorf("POST /schematics on an Enterprise fake = %s; want another ID and owner in the schematic", data)
	}
}

func TestImagesSupportRangeAndAreDeterministic(t *testing.T) {
	t.Parallel()
	opts := factorytest.Options{Catalog: factorytest.ReferenceCatalog(), ImageSize: 3<<20 + 5}
	f1, f2 := factorytest.New(t, opts), factorytest.New(t, opts)
	for _, f := range []*factorytest.Factory{f1, f2} {
		if _, err := f.AddSchematic("customization: {}\n"); err != nil {
			t.Fatal(err)
		}
	}
	path := "/image/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba/v1.9.5/metal-amd64.iso"
	_, full1 := do(t, http.MethodGet, f1.URL()+path, "", nil)
	_, full2 := do(t, http.MethodGet, f2.URL()+path, "", nil)
	if len(full1) != 3<<20+5 || !bytes.Equal(full1, full2) {
		t.Fatalf("two fakes served %d and %d bytes, equal %v; want the same %d bytes", len(full1), len(full2), bytes.Equal(full1, full2), 3<<20+5)
	}
	if bytes.Equal(full1[:1<<20], full1[1<<20:2<<20]) {
		t.Errorf("consecutive MiB of an image are identical; want them to differ")
	}
	for _, rng := range []struct {
		spec     string
		from, to int
	}{{"bytes=0-99", 0, 100}, {"bytes=1048570-1048600", 1048570, 1048601}, {"bytes=3145700-", 3145700, 3<<20 + 5}} {
		resp, part := do(t, http.MethodGet, f1.URL()+path, "", map[string]string{"Range": rng.spec})
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, full1[rng.from:rng.to]) {
			t.Errorf("GET Range %s = %d, %d bytes; want 206 with bytes %d-%d", rng.spec, resp.StatusCode, len(part), rng.from, rng.to-1)
		}
	}
	etag := func() string {
		resp, _ := do(t, http.MethodHead, f1.URL()+path, "", nil)
		return resp.Header.Get("ETag")
	}
	before := etag()
	resp, part := do(t, http.MethodGet, f1.URL()+path, "", map[string]string{"Range": "bytes=10-", "If-Range": before})
	if resp.StatusCode != 206 || len(part) != len(full1)-10 {
		t.Errorf("GET Range with matching If-Range = %d; want 206", resp.StatusCode)
	}
	f1.Rebuild()
	resp, all := do(t, http.MethodGet, f1.URL()+path, "", map[string]string{"Range": "bytes=10-", "If-Range": before})
	if resp.StatusCode != 200 || bytes.Equal(all, full1) || etag() == before {
		t.Errorf("GET after Rebuild with a stale If-Range = %d; want 200 with new bytes and a new ETag", resp.StatusCode)
	}
	if resp, _ := do(t, http.MethodGet, f1.URL()+path+".sha256", "", nil); resp.StatusCode != http.StatusPaymentRequired {
		t.Errorf("GET %s.sha256 = %d; want 402 like a community factory", path, resp.StatusCode)
	}
}

func TestCatalogEndpoints(t *testing.T) {
	t.Parallel()
	cat := factorytest.ReferenceCatalog()
	cat.Broken = []string{"v1.10.1"}
	f := factorytest.New(t, factorytest.Options{Catalog: cat})
	_, data := do(t, http.MethodGet, f.URL()+"/versions?broken=true", "", nil)
	if strings.TrimSpace(string(data)) != `["v1.10.1"]` {
		t.Errorf("GET /versions?broken=true = %s; want [\"v1.10.1\"]", data)
	}
	_, data = do(t, http.MethodGet, f.URL()+"/version/v1.11.2/extensions/official", "", nil)
	if !strings.Contains(string(data), `"ref":"ghcr.io/siderolabs/qemu-guest-agent:10.0.2","digest":"sha256:9720300de00544eca155bc19369dfd7789d39a0e23d72837a7188f199e13dc6c"`) {
		t.Errorf("GET /version/v1.11.2/extensions/official lacks the reference qemu-guest-agent entry: %.300s", data)
	}
	if resp, _ := do(t, http.MethodGet, f.URL()+"/version/v0.1.0/extensions/official", "", nil); resp.StatusCode != 404 {
		t.Errorf("GET extensions of an unknown version = %d; want 404", resp.StatusCode)
	}
	if resp, data := do(t, http.MethodGet, f.URL()+"/version/v1.9.5/overlays/official", "", nil); resp.StatusCode != 200 || strings.TrimSpace(string(data)) != "[]" {
		t.Errorf("GET overlays = %d %s; want 200 []", resp.StatusCode, data)
	}
}

func TestContentReplacesGeneratedBytes(t *testing.T) {
	t.Parallel()
	disk := []byte("a real disk image, say zstd")
	for _, noRange := range []bool{false, true} {
		f := factorytest.New(t, factorytest.Options{Catalog: factorytest.Catalog{Versions: []string{"v1.12.11"}}, NoRange: noRange,
			Content: func(id, version, path string) []byte {
				if strings.HasSuffix(path, ".raw.zst") {
					return disk
				}
				return nil
			}})
		id, err := f.AddSchematic("customization: {}\n")
		if err != nil {
			t.Fatal(err)
		}
		base := f.URL() + "/image/" + id + "/v1.12.11/"
		resp, got := do(t, http.MethodGet, base+"nocloud-amd64.raw.zst", "", nil)
		if resp.StatusCode != 200 || !bytes.Equal(got, disk) || resp.ContentLength != int64(len(disk)) {
			t.Errorf("GET .raw.zst (NoRange %v) = %d, %q (length %d); want the Content bytes", noRange, resp.StatusCode, got, resp.ContentLength)
		}
		if r, n := f.Image(id, "v1.12.11", "nocloud-amd64.raw.zst"); n != int64(len(disk)) || r == nil {
			t.Errorf("Image(.raw.zst) size = %d; want %d", n, len(disk))
		}
		if _, iso := do(t, http.MethodGet, base+"nocloud-amd64.iso", "", nil); int64(len(iso)) != 1<<20+123 {
			t.Errorf("GET .iso (NoRange %v) = %d bytes; want the generated default size", noRange, len(iso))
		}
	}
}
