package registrytest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
)

// Media types of what Seed writes.
const (
	OCIIndex        = "application/vnd.oci.image.index.v1+json"
	OCIManifest     = "application/vnd.oci.image.manifest.v1+json"
	OCIConfig       = "application/vnd.oci.image.config.v1+json"
	OCILayer        = "application/vnd.oci.image.layer.v1.tar+gzip"
	SimpleSigning   = "application/vnd.dev.cosign.simplesigning.v1+json"
	DSSEAttestation = "application/vnd.dsse.envelope.v1+json"
)

// Spec describes one synthetic image. Layer content is a deterministic pseudo-random
// stream, so sizes can be large without memory, and two specs with the same layer seed
// share that blob (as images sharing a base layer do).
type Spec struct {
	Repo string
	Tag  string
	// Platforms like "linux/amd64"; more than one makes an index.
	Platforms []string
	// Layers are per-platform layer sizes, seeded by Seed, platform and position.
	Layers []int64
	// Shared are layer sizes seeded by SharedSeed only: the same blob in every image
	// and platform that uses the same SharedSeed.
	Shared     []int64
	SharedSeed uint64
	Seed       uint64
	// Sign adds a cosign-style sha256-<hex>.sig tag; Attest adds .att.
	Sign, Attest bool
}

// Blob is one blob written.
type Blob struct {
	Digest string
	Size   int64
}

// Image is what Seed wrote.
type Image struct {
	Repo, Tag string
	// Digest is the tag's digest (the index for multi-platform images).
	Digest string
	// Manifests are all manifest digests written, the top one first.
	Manifests []string
	Blobs     []Blob
	// Signatures are the signature tags written (sha256-<hex>.sig / .att).
	Signatures []string
	// Bytes is the sum of blob sizes (shared blobs counted once per image).
	Bytes int64
}

// Ref is host/repo:tag.
func (im *Image) Ref(host string) string { return host + "/" + im.Repo + ":" + im.Tag }

// Seeder writes images into a plain registry over the distribution API.
type Seeder struct {
	Host   string
	Client *http.Client
}

func (s *Seeder) client() *http.Client {
	if s.Client != nil {
		return s.Client
	}
	return http.DefaultClient
}

// Seed writes the image: layers and configs, per-platform manifests, the index, the tag,
// and the requested signature tags.
func (s *Seeder) Seed(ctx context.Context, spec Spec) (*Image, error) {
	if len(spec.Platforms) == 0 {
		spec.Platforms = []string{"linux/amd64"}
	}
	im := &Image{Repo: spec.Repo, Tag: spec.Tag}
	type desc struct {
		MediaType string            `json:"mediaType"`
		Digest    string            `json:"digest"`
		Size      int64             `json:"size"`
		Platform  map[string]string `json:"platform,omitempty"`
	}
	var children []desc
	var childBodies [][]byte
	for pi, plat := range spec.Platforms {
		os, arch, _ := strings.Cut(plat, "/")
		var layers []desc
		for li, size := range spec.Shared {
			b, err := s.PutStream(ctx, spec.Repo, size, seedOf(spec.SharedSeed, 1<<20, uint64(li)))
			if err != nil {
				return nil, err
			}
			im.add(b)
			layers = append(layers, desc{MediaType: OCILayer, Digest: b.Digest, Size: b.Size})
		}
		for li, size := range spec.Layers {
			b, err := s.PutStream(ctx, spec.Repo, size, seedOf(spec.Seed, uint64(pi), uint64(li)))
			if err != nil {
				return nil, err
			}
			im.add(b)
			layers = append(layers, desc{MediaType: OCILayer, Digest: b.Digest, Size: b.Size})
		}
		diffIDs := make([]string, len(layers))
		for i, l := range layers {
			diffIDs[i] = l.Digest
		}
		cfg, _ := json.Marshal(map[string]any{
			"architecture": arch, "os": os,
			"config": map[string]any{"Labels": map[string]string{"seed": fmt.Sprint(spec.Seed), "repo": spec.Repo}},
			"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
		})
		cb, err := s.PutBytes(ctx, spec.Repo, cfg)
		if err != nil {
			return nil, err
		}
		im.add(cb)
		body, _ := json.Marshal(map[string]any{
			"schemaVersion": 2, "mediaType": OCIManifest,
			"config": desc{MediaType: OCIConfig, Digest: cb.Digest, Size: cb.Size},
			"layers": layers,
		})
		d, err := s.PutManifest(ctx, spec.Repo, digestOf(body), OCIManifest, body)
		if err != nil {
			return nil, err
		}
		children = append(children, desc{MediaType: OCIManifest, Digest: d, Size: int64(len(body)), Platform: map[string]string{"os": os, "architecture": arch}})
		childBodies = append(childBodies, body)
	}
	top, topType := childBodies[0], OCIManifest
	if len(children) > 1 {
		top, _ = json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": OCIIndex, "manifests": children})
		topType = OCIIndex
	}
	for _, c := range children {
		im.Manifests = append(im.Manifests, c.Digest)
	}
	d, err := s.PutManifest(ctx, spec.Repo, spec.Tag, topType, top)
	if err != nil {
		return nil, err
	}
	im.Digest = d
	if topType == OCIIndex {
		im.Manifests = append([]string{d}, im.Manifests...)
	}
	if spec.Sign {
		if err := s.signature(ctx, im, ".sig", SimpleSigning); err != nil {
			return nil, err
		}
	}
	if spec.Attest {
		if err := s.signature(ctx, im, ".att", DSSEAttestation); err != nil {
			return nil, err
		}
	}
	return im, nil
}

func (im *Image) add(b Blob) {
	for _, x := range im.Blobs {
		if x.Digest == b.Digest {
			return
		}
	}
	im.Blobs = append(im.Blobs, b)
	im.Bytes += b.Size
}

// signature writes a cosign-shaped artefact for im's digest under tag sha256-<hex><suffix>.
func (s *Seeder) signature(ctx context.Context, im *Image, suffix, layerType string) error {
	payload, _ := json.Marshal(map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": im.Repo},
			"image":    map[string]string{"docker-manifest-digest": im.Digest},
			"type":     "cosign container image signature",
		},
		"optional": map[string]string{"suffix": suffix},
	})
	pb, err := s.PutBytes(ctx, im.Repo, payload)
	if err != nil {
		return err
	}
	cfg := []byte(`{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":["` + pb.Digest + `"]}}`)
	cb, err := s.PutBytes(ctx, im.Repo, cfg)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": OCIManifest,
		"config": map[string]any{"mediaType": OCIConfig, "digest": cb.Digest, "size": cb.Size},
		"layers": []map[string]any{{
			"mediaType": layerType, "digest": pb.Digest, "size": pb.Size,
			"annotations": map[string]string{"dev.cosignproject.cosign/signature": "ZmFrZS1zaWduYXR1cmU="},
		}},
	})
	tag := strings.Replace(im.Digest, ":", "-", 1) + suffix
	d, err := s.PutManifest(ctx, im.Repo, tag, OCIManifest, body)
	if err != nil {
		return err
	}
	im.Signatures = append(im.Signatures, tag)
	im.Manifests = append(im.Manifests, d)
	im.Blobs = append(im.Blobs, pb, cb)
	return nil
}

func seedOf(a, b, c uint64) [32]byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[0:], a)
	binary.LittleEndian.PutUint64(s[8:], b)
	binary.LittleEndian.PutUint64(s[16:], c)
	binary.LittleEndian.PutUint64(s[24:], 0x696d6770697065)
	return s
}

// Content returns the deterministic stream of a blob seeded like Seed's layers.
func Content(seed [32]byte, size int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8(seed), size)
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// PutBytes uploads a small blob in one request pair (POST + PUT).
func (s *Seeder) PutBytes(ctx context.Context, repo string, data []byte) (Blob, error) {
	d := digestOf(data)
	loc, err := s.startUpload(ctx, repo)
	if err != nil {
		return Blob{}, err
	}
	if err := s.put(ctx, loc, d, strings.NewReader(string(data)), int64(len(data))); err != nil {
		return Blob{}, err
	}
	return Blob{Digest: d, Size: int64(len(data))}, nil
}

// PutStream uploads size pseudo-random bytes from seed without holding them in memory:
// the stream is hashed on the way (PATCH) and committed with its digest (PUT). A blob the
// registry already has in repo is not sent again.
func (s *Seeder) PutStream(ctx context.Context, repo string, size int64, seed [32]byte) (Blob, error) {
	h := sha256.New()
	if _, err := io.Copy(h, Content(seed, size)); err != nil {
		return Blob{}, err
	}
	d := "sha256:" + hex.EncodeToString(h.Sum(nil))
	req, _ := http.NewRequestWithContext(ctx, http.MethodHead, "http://"+s.Host+"/v2/"+repo+"/blobs/"+d, nil)
	if resp, err := s.client().Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return Blob{Digest: d, Size: size}, nil
		}
	}
	loc, err := s.startUpload(ctx, repo)
	if err != nil {
		return Blob{}, err
	}
	if err := s.put(ctx, loc, d, Content(seed, size), size); err != nil {
		return Blob{}, err
	}
	return Blob{Digest: d, Size: size}, nil
}

func (s *Seeder) startUpload(ctx context.Context, repo string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.Host+"/v2/"+repo+"/blobs/uploads/", nil)
	if err != nil {
		return "", err
	}
	resp, err := s.client().Do(req)
	if err != nil {
		return "", fmt.Errorf("seeding %s: %w", repo, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("seeding %s: POST upload: %s", repo, resp.Status)
	}
	u, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

func (s *Seeder) put(ctx context.Context, loc, digest string, body io.Reader, size int64) error {
	u, err := url.Parse(loc)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("digest", digest)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := s.client().Do(req)
	if err != nil {
		return fmt.Errorf("seeding blob %s: %w", digest, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("seeding blob %s: PUT: %s %s", digest, resp.Status, b)
	}
	return nil
}

// PutManifest writes a manifest under ref and returns its digest.
func (s *Seeder) PutManifest(ctx context.Context, repo, ref, mediaType string, body []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+s.Host+"/v2/"+repo+"/manifests/"+ref, strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := s.client().Do(req)
	if err != nil {
		return "", fmt.Errorf("seeding manifest %s:%s: %w", repo, ref, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("seeding manifest %s:%s: %s %s", repo, ref, resp.Status, b)
	}
	return digestOf(body), nil
}
