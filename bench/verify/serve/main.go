// Command serve sets up the end-to-end verify benchmark: an in-memory registry on
// 127.0.0.1 holding n key-signed images (legacy .sig tags, as Image Factory signs), and in
// -dir the files both tools need: key.pub, a lock and imgpipe.yaml for `imgpipe verify`,
// policy.json and registries.d for skopeo's sigstoreSigned check, and images.txt. It
// prints the registry host and serves until killed. Driven by ../run.sh.
package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/empty"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/imgpipe/imgpipe/site"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n := flag.Int("n", 50, "images")
	dir := flag.String("dir", "", "directory for key, lock, config and policies (required)")
	flag.Parse()
	if err := run(ctx, *n, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n int, dir string) error {
	if dir == "" {
		return fmt.Errorf("-dir is required")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	go srv.Serve(l)
	defer srv.Close()
	host := l.Addr().String()

	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		return err
	}
	pub, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return err
	}
	keyPath := filepath.Join(dir, "key.pub")
	if err := os.WriteFile(keyPath, pub, 0o644); err != nil {
		return err
	}
	lock := &site.Lock{Schema: site.LockSchema, Talos: "v1.9.5", Profiles: []site.Profile{{Name: "bench"}}}
	var refs []string
	for i := range n {
		ref := fmt.Sprintf("%s/bench/ext%d:v1", host, i)
		d, err := pushSigned(ref, sv)
		if err != nil {
			return err
		}
		lock.Profiles[0].Extensions = append(lock.Profiles[0].Extensions, site.Extension{Ref: ref, Digest: d.DigestStr(), DigestStatus: "pinned"})
		refs = append(refs, d.String())
	}
	if err := site.WriteLock(filepath.Join(dir, "lock.json"), lock); err != nil {
		return err
	}
	files := map[string]string{
		"imgpipe.yaml": "version: 1\nprofiles:\n  - name: bench\nverify:\n  policies:\n    - match: \"*/bench/**\"\n      key: " + keyPath + "\n",
		"policy.json": `{"default":[{"type":"reject"}],"transports":{"docker":{"` + host + `":[{"type":"sigstoreSigned","keyPath":"` + keyPath +
			`","signedIdentity":{"type":"matchRepository"}}]}}}`,
		"registries.d/default.yaml": "default-docker:\n  use-sigstore-attachments: true\n",
		"images.txt":                strings.Join(refs, "\n") + "\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	fmt.Println(host)
	<-ctx.Done()
	return nil
}

// pushSigned pushes a small random image and its cosign .sig signature.
func pushSigned(ref string, sv signature.SignerVerifier) (name.Digest, error) {
	tag, err := name.ParseReference(ref)
	if err != nil {
		return name.Digest{}, err
	}
	img, err := random.Image(1024, 1)
	if err != nil {
		return name.Digest{}, err
	}
	if err := remote.Write(tag, img); err != nil {
		return name.Digest{}, err
	}
	h, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	d := tag.Context().Digest(h.String())
	payload, sig, err := signature.SignImage(sv, d, nil)
	if err != nil {
		return name.Digest{}, err
	}
	s, err := static.NewSignature(payload, base64.StdEncoding.EncodeToString(sig))
	if err != nil {
		return name.Digest{}, err
	}
	sigs, err := mutate.AppendSignatures(empty.Signatures(), false, s)
	if err != nil {
		return name.Digest{}, err
	}
	st, err := ociremote.SignatureTag(d)
	if err != nil {
		return name.Digest{}, err
	}
	return d, remote.Write(st, sigs)
}
