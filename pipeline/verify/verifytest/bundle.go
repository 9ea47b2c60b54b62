package verifytest

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
	"google.golang.org/protobuf/encoding/protojson"
)

// CosignSignPredicateType is the in-toto predicate of a plain `cosign sign` in the new
// bundle format (and of image-factory's GSA signer).
const CosignSignPredicateType = "https://sigstore.dev/cosign/sign/v1"

// BundleSigstore signs images keyless in the new format: a sigstore bundle v0.3 (DSSE
// envelope of an in-toto statement naming the image digest, Fulcio-style certificate,
// Rekor entry with inclusion proof and promise) attached as an OCI referrer, as
// `cosign sign --new-bundle-format` and image-factory's GSA signer do. It wraps
// sigstore-go's VirtualSigstore.
type BundleSigstore struct {
	vs *ca.VirtualSigstore
}

// NewBundleSigstore returns a fresh virtual Fulcio/Rekor/TSA.
func NewBundleSigstore(t testing.TB) *BundleSigstore {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	return &BundleSigstore{vs: vs}
}

// TrustedMaterial is the virtual sigstore's trust root. Its CT log is left out: the
// virtual Fulcio issues certificates without SCTs.
func (b *BundleSigstore) TrustedMaterial() root.TrustedMaterial { return noCTLogs{b.vs} }

type noCTLogs struct{ root.TrustedMaterial }

func (noCTLogs) CTLogs() map[string]*root.TransparencyLog { return nil }

// BundleOpts shapes one bundle signature.
type BundleOpts struct {
	// Under is the image the referrer is attached to (default: the signed image).
	Under *name.Digest
	// Tamper rewrites the statement after signing.
	Tamper bool
	// PredicateType overrides CosignSignPredicateType (e.g. an SBOM attestation).
	PredicateType string
	// RekorV2 logs a Rekor v2 entry (no inclusion promise, no trusted integrated time)
	// and adds a TSA timestamp, as Rekor v2 signers (image-factory GSA) do.
	RekorV2 bool
}

// SignBundle signs d as subject/issuer and attaches the bundle as a referrer.
func (b *BundleSigstore) SignBundle(t testing.TB, d name.Digest, subject, issuer string, o BundleOpts) {
	t.Helper()
	stmt := statement(t, d, o.PredicateType)
	// The virtual Fulcio's leaf is valid from now for 10 minutes; log it inside that.
	var ent *ca.TestEntity
	var err error
	if o.RekorV2 {
		ent, err = b.vs.AttestAtTimeHashedRekordV2(subject, issuer, stmt, time.Now().Add(time.Minute))
	} else {
		ent, err = b.vs.AttestAtTime(subject, issuer, stmt, time.Now().Add(time.Minute), true)
	}
	if err != nil {
		t.Fatal(err)
	}
	vc, err := ent.VerificationContent()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ent.SignatureContent()
	if err != nil {
		t.Fatal(err)
	}
	env := sc.EnvelopeContent().RawEnvelope()
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := ent.TlogEntries()
	if err != nil {
		t.Fatal(err)
	}
	tle := entries[0].TransparencyLogEntry()
	var tsData *protobundle.TimestampVerificationData
	if o.RekorV2 {
		stamps, err := ent.Timestamps()
		if err != nil {
			t.Fatal(err)
		}
		tsData = &protobundle.TimestampVerificationData{}
		for _, ts := range stamps {
			tsData.Rfc3161Timestamps = append(tsData.Rfc3161Timestamps, &protocommon.RFC3161SignedTimestamp{SignedTimestamp: ts})
		}
	} else {
		tle.KindVersion = &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"}
		set, err := b.vs.RekorSignPayload(tlog.RekorPayload{
			Body:           base64.StdEncoding.EncodeToString(tle.CanonicalizedBody),
			IntegratedTime: tle.IntegratedTime,
			LogIndex:       tle.LogIndex,
			LogID:          hex.EncodeToString(tle.LogId.KeyId),
		})
		if err != nil {
			t.Fatal(err)
		}
		tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	}
	if o.Tamper {
		payload = []byte(strings.Replace(string(payload), `"predicate":{}`, `"predicate":{"injected":"by-attacker"}`, 1))
	}
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: vc.Certificate().Raw}},
			TlogEntries:               []*protorekor.TransparencyLogEntry{tle},
			TimestampVerificationData: tsData,
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: env.PayloadType,
			Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
	writeBundle(t, d, pb, o)
}

// SignBundleWithKey signs d with sv in the new format (`cosign sign --key K
// --new-bundle-format --tlog-upload=false`): a bundle v0.3 holding a DSSE envelope and a
// public-key hint, attached as a referrer.
func SignBundleWithKey(t testing.TB, sv signature.SignerVerifier, d name.Digest, o BundleOpts) {
	t.Helper()
	stmt := statement(t, d, o.PredicateType)
	envJSON, err := sigdsse.WrapSigner(sv, "application/vnd.in-toto+json").SignMessage(bytes.NewReader(stmt))
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []struct {
			Sig string `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(envJSON, &env); err != nil {
		t.Fatal(err)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		t.Fatal(err)
	}
	if o.Tamper {
		payload = []byte(strings.Replace(string(payload), `"predicate":{}`, `"predicate":{"injected":"by-attacker"}`, 1))
	}
	pub, err := sv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	hint := sha256.Sum256(der)
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: base64.StdEncoding.EncodeToString(hint[:])}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: env.PayloadType,
			Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
	writeBundle(t, d, pb, o)
}

func writeBundle(t testing.TB, d name.Digest, pb *protobundle.Bundle, o BundleOpts) {
	t.Helper()
	pred := o.PredicateType
	if pred == "" {
		pred = CosignSignPredicateType
	}
	data, err := protojson.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	target := d
	if o.Under != nil {
		target = *o.Under
	}
	if err := ociremote.WriteAttestationNewBundleFormat(target, data, pred); err != nil {
		t.Fatalf("attaching bundle to %s: %v", target, err)
	}
}

// statement is the in-toto statement cosign signs for an image in the new format.
func statement(t testing.TB, d name.Digest, predicateType string) []byte {
	t.Helper()
	if predicateType == "" {
		predicateType = CosignSignPredicateType
	}
	algo, hexDigest, _ := strings.Cut(d.DigestStr(), ":")
	stmt, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"digest": map[string]string{algo: hexDigest}}},
		"predicateType": predicateType,
		"predicate":     map[string]any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return stmt
}
