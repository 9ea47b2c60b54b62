package factorytest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// serveRegistry is the factory's OCI registry frontend, reduced to what imgpipe
// touches: the /v2/ ping and installer manifests, built on first request.
func (f *Factory) serveRegistry(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if r.URL.Path == "/v2/" || r.URL.Path == "/v2" {
		writeJSON(w, http.StatusOK, map[string]string{})
		return
	}
	name, tag, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/manifests/")
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		registryError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
		return
	}
	kind, id, ok := strings.Cut(name, "/")
	if !ok || !(kind == "installer" || kind == "installer-secureboot" ||
		strings.HasSuffix(kind, "-installer") || strings.HasSuffix(kind, "-installer-secureboot")) {
		registryError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
		return
	}
	if !f.HasSchematic(id) {
		registryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "schematic not found")
		return
	}
	if !slices.Contains(f.catalog().Versions, tag) {
		registryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "version not found")
		return
	}
	key := name + ":" + tag
	f.mu.Lock()
	built := f.built[key]
	f.mu.Unlock()
	if !built && f.opts.BuildDelay > 0 {
		t := time.NewTimer(f.opts.BuildDelay)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	f.mu.Lock()
	f.built[key] = true
	f.mu.Unlock()

	body := installerManifest(key)
	sum := sha256.Sum256(body)
	w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	w.Header().Set("Docker-Content-Digest", "sha256:"+hex.EncodeToString(sum[:]))
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

// installerManifest is a deterministic OCI image manifest for an installer ref.
func installerManifest(key string) []byte {
	blob := func(what string) (string, int) {
		s := sha256.Sum256([]byte(what + ":" + key))
		return "sha256:" + hex.EncodeToString(s[:]), 1000 + int(s[0])
	}
	cfgDigest, cfgSize := blob("config")
	layerDigest, layerSize := blob("layer")
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfgDigest, "size": cfgSize},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layerDigest, "size": layerSize}},
	}
	data, _ := json.Marshal(m)
	return data
}

func registryError(w http.ResponseWriter, code int, errCode, msg string) {
	writeJSON(w, code, map[string]any{"errors": []map[string]string{{"code": errCode, "message": msg}}})
}
