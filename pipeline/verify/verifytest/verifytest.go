// Package verifytest builds signed images for offline tests: an in-process registry on
// 127.0.0.1, cosign key signatures as Image Factory makes them, and a test Sigstore (a CA
// standing in for Fulcio, issuing leaf certs with an email SAN and the OIDC issuer
// extensions, and a Rekor key signing SETs) for keyless signatures in the legacy .sig
// format. Its trusted root can be written as trusted_root.json for --trusted-root.
// BundleSigstore (sigstore-go's VirtualSigstore) and SignBundleWithKey make the new
// format: sigstore bundles attached as OCI referrers, keyless (Rekor v1 or v2 + TSA) or
// by key. Other stages may use it to build signed fixtures (e.g. a mirror test checking
// that signatures travel with images).
package verifytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	"github.com/sigstore/cosign/v2/pkg/oci/empty"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Registry runs an in-memory registry on 127.0.0.1 and returns its host:port. Like
// distribution, it has no referrers API: referrers live under the sha256-<hex> tag.
func Registry(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// RegistryWithReferrers is Registry with the OCI 1.1 referrers API.
func RegistryWithReferrers(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true)))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// ClosedAddr returns a loopback address nothing listens on.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// PushRandom pushes a random image to ref (a tag) and returns its digest reference.
func PushRandom(t testing.TB, ref string) name.Digest {
	t.Helper()
	tag, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tag.Context().Digest(h.String())
}

// NewKey returns a fresh ECDSA P-256 signer and its PEM public key.
func NewKey(t testing.TB) (signature.SignerVerifier, []byte) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	pemKey, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return sv, pemKey
}

// SigOpts shapes one test signature.
type SigOpts struct {
	// Under is the image whose .sig tag receives the signature (default: the signed
	// image): a valid signature of another digest placed under this image's tag.
	Under *name.Digest
	// Tamper changes the payload after signing.
	Tamper bool
	// NoBundle leaves out the Rekor SET of a keyless signature (never logged).
	NoBundle bool
}

// writeSig stores sigs under the .sig tag of target (what `cosign sign` does).
func writeSig(t testing.TB, target name.Digest, s ...staticSig) {
	t.Helper()
	sigs := empty.Signatures()
	for _, one := range s {
		sig, err := static.NewSignature(one.payload, one.b64, one.opts...)
		if err != nil {
			t.Fatal(err)
		}
		sigs, err = mutate.AppendSignatures(sigs, false, sig)
		if err != nil {
			t.Fatal(err)
		}
	}
	tag, err := ociremote.SignatureTag(target)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, sigs); err != nil {
		t.Fatalf("writing %s: %v", tag, err)
	}
}

type staticSig struct {
	payload []byte
	b64     string
	opts    []static.Option
}

// SignWithKey signs d with sv (as Image Factory's KeySigner does) and stores it.
func SignWithKey(t testing.TB, sv signature.SignerVerifier, d name.Digest, o SigOpts) {
	t.Helper()
	payload, sig, err := signature.SignImage(sv, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Tamper {
		payload = tamper(t, payload)
	}
	target := d
	if o.Under != nil {
		target = *o.Under
	}
	writeSig(t, target, staticSig{payload: payload, b64: base64.StdEncoding.EncodeToString(sig)})
}

// tamper rewrites a field of the payload that is not the digest, so only the signature
// check (not the claim check) can catch it.
func tamper(t testing.TB, payload []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	m["optional"] = map[string]any{"injected": "by-attacker"}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Sigstore stands in for Fulcio and Rekor: a CA issuing short-lived leaf certs with an
// email SAN and the OIDC issuer extensions, and a Rekor key signing SETs. It has no CT
// log, like a private sigstore, so SCTs are not required by the verifier.
type Sigstore struct {
	caCert   *x509.Certificate
	caKey    *ecdsa.PrivateKey
	caPEM    []byte
	rekorKey *ecdsa.PrivateKey
	logID    []byte
}

func NewSigstore(t testing.TB) *Sigstore {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "imgpipe test fulcio", Organization: []string{"imgpipe test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := cryptoutils.MarshalCertificateToPEM(caCert)
	if err != nil {
		t.Fatal(err)
	}
	rekorKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(rekorKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	id := sha256.Sum256(pubDER)
	return &Sigstore{caCert: caCert, caKey: caKey, caPEM: caPEM, rekorKey: rekorKey, logID: id[:]}
}

// TrustedRoot is the sigstore trusted root for this test CA and Rekor key.
func (s *Sigstore) TrustedRoot(t testing.TB) *root.TrustedRoot {
	t.Helper()
	ca := &root.FulcioCertificateAuthority{
		Root:                s.caCert,
		ValidityPeriodStart: time.Now().Add(-time.Hour),
		URI:                 "https://fulcio.test",
	}
	logs := map[string]*root.TransparencyLog{
		hex.EncodeToString(s.logID): {
			BaseURL:             "https://rekor.test",
			ID:                  s.logID,
			ValidityPeriodStart: time.Now().Add(-time.Hour),
			HashFunc:            crypto.SHA256,
			PublicKey:           s.rekorKey.Public(),
			SignatureHashFunc:   crypto.SHA256,
		},
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, []root.CertificateAuthority{ca}, nil, nil, logs)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
)

// leaf issues a Fulcio-like certificate for subject (email SAN) and OIDC issuer.
func (s *Sigstore) leaf(t testing.TB, subject, issuer string) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := asn1.MarshalWithParams(issuer, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:   big.NewInt(time.Now().UnixNano()),
		EmailAddresses: []string{subject},
		NotBefore:      time.Now().Add(-time.Minute),
		NotAfter:       time.Now().Add(10 * time.Minute),
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{
			{Id: oidIssuerV1, Value: []byte(issuer)},
			{Id: oidIssuerV2, Value: v2},
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.caCert, key.Public(), s.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, derToPEM(t, der)
}

func derToPEM(t testing.TB, der []byte) []byte {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cryptoutils.MarshalCertificateToPEM(c)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// SignKeyless signs d like `cosign sign` with Fulcio + Rekor: a leaf cert for
// subject/issuer, the signature, and a Rekor bundle (SET) over a hashedrekord entry.
func (s *Sigstore) SignKeyless(t testing.TB, d name.Digest, subject, issuer string, o SigOpts) {
	t.Helper()
	key, certPEM := s.leaf(t, subject, issuer)
	sv, err := signature.LoadECDSASignerVerifier(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	payload, sig, err := signature.SignImage(sv, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(sig)
	opts := []static.Option{static.WithCertChain(certPEM, s.caPEM)}
	if !o.NoBundle {
		opts = append(opts, static.WithBundle(s.rekorBundle(t, payload, b64, certPEM)))
	}
	if o.Tamper {
		payload = tamper(t, payload)
	}
	target := d
	if o.Under != nil {
		target = *o.Under
	}
	writeSig(t, target, staticSig{payload: payload, b64: b64, opts: opts})
}

// rekorBundle builds the SET Rekor would return for a hashedrekord entry.
func (s *Sigstore) rekorBundle(t testing.TB, payload []byte, b64sig string, certPEM []byte) *cbundle.RekorBundle {
	t.Helper()
	sum := sha256.Sum256(payload)
	entry := map[string]any{
		"apiVersion": "0.0.1",
		"kind":       "hashedrekord",
		"spec": map[string]any{
			"data": map[string]any{"hash": map[string]any{"algorithm": "sha256", "value": hex.EncodeToString(sum[:])}},
			"signature": map[string]any{
				"content":   b64sig,
				"publicKey": map[string]any{"content": base64.StdEncoding.EncodeToString(certPEM)},
			},
		},
	}
	body, err := json.Marshal(entry)
	if err != nil {
		t.Fatal(err)
	}
	p := cbundle.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(body),
		IntegratedTime: time.Now().Unix(),
		LogIndex:       42,
		LogID:          hex.EncodeToString(s.logID),
	}
	// The SET signs the canonical JSON of the payload; encoding/json sorts map keys,
	// which is canonical for these plain strings and integers.
	canon, err := json.Marshal(map[string]any{
		"body": p.Body, "integratedTime": p.IntegratedTime, "logIndex": p.LogIndex, "logID": p.LogID,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(canon)
	set, err := ecdsa.SignASN1(rand.Reader, s.rekorKey, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return &cbundle.RekorBundle{SignedEntryTimestamp: set, Payload: p}
}

// WriteTrustedRoot writes the trusted root as trusted_root.json into dir and returns its path.
func (s *Sigstore) WriteTrustedRoot(t testing.TB, dir string) string {
	t.Helper()
	data, err := s.TrustedRoot(t).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	p := dir + "/trusted_root.json"
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
