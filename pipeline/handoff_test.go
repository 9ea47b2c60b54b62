package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/pipeline/verify"
	"github.com/imgpipe/imgpipe/pipeline/verify/verifytest"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/registry"
)

// handoffSite is an upstream registry with one signed extension image, a site key and a
// lock naming the image by tag (no digest), as a fresh resolve writes it.
type handoffSite struct {
	up, ref, keyFile string
	signed           name.Digest
	lock             *site.Lock
}

func newHandoffSite(t *testing.T) *handoffSite {
	t.Helper()
	s := &handoffSite{up: verifytest.Registry(t)}
	s.ref = s.up + "/siderolabs/qemu-guest-agent:9.2.0"
	sv, pemKey := verifytest.NewKey(t)
	s.keyFile = filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(s.keyFile, pemKey, 0o644); err != nil {
		t.Fatal(err)
	}
	s.signed = verifytest.PushRandom(t, s.ref)
	verifytest.SignWithKey(t, sv, s.signed, verifytest.SigOpts{})
	s.lock = &site.Lock{Schema: site.LockSchema, Talos: "v1.9.5", Profiles: []site.Profile{{Name: "worker",
		Extensions: []site.Extension{{Name: "siderolabs/qemu-guest-agent", Ref: s.ref, DigestStatus: "unknown"}}}}}
	return s
}

// config mirrors the upstream into mirrorHost by push and requires the site key.
func (s *handoffSite) config(mirrorHost string) *site.Config {
	return &site.Config{
		Registries: site.RegistryConfig{Mirrors: map[string]site.MirrorConfig{s.up: {Endpoint: "http://" + mirrorHost, Mode: "push"}}},
		Verify:     site.VerifyConfig{Policies: []site.PolicyConfig{{Match: s.up + "/**", Key: s.keyFile}}},
	}
}

func (s *handoffSite) run(t *testing.T, report string, cfg *site.Config, stages ...string) (*Report, error) {
	t.Helper()
	deps := Deps{Mirror: registry.New(registry.WithBackoff(registry.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Steps: 1})), MirrorMode: registry.ModePush}
	r, err := New(Stages(deps), WithReport(report))
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) == 0 {
		stages = []string{StageVerify, StageMirror}
	}
	lock := *s.lock
	return r.Run(context.Background(), stages, &State{Lock: &lock, Config: cfg})
}

// TestItem1ResumeReverifiesMovedTag is issue 12 item 1: verify checks signed digest A,
// mirror fails; the tag moves to unsigned B; the rerun must not take verify as done
// ("skipped") and must not mirror B: it re-verifies, fails on B (exit 3), and mirror
// does not run.
func TestItem1ResumeReverifiesMovedTag(t *testing.T) {
	t.Parallel()
	s := newHandoffSite(t)
	report := filepath.Join(t.TempDir(), "build.json")

	// Run 1: verify passes, the mirror is down.
	rep, err := s.run(t, report, s.config(verifytest.ClosedAddr(t)))
	if err == nil || rep.Stages[0].Status != StatusDone || rep.Stages[1].Status != StatusFailed {
		t.Fatalf("first run = %v, stages %+v; want verify done, mirror failed", err, rep.Stages)
	}

	// The tag moves to an unsigned image.
	moved := verifytest.PushRandom(t, s.ref)
	mirror := verifytest.Registry(t)
	rep, err = s.run(t, report, s.config(mirror))
	if !errors.Is(err, fail.ErrPolicy) {
		t.Errorf("rerun after the tag moved = %v; want a policy failure (B is unsigned)", err)
	}
	if got := rep.Stages[0].Status; got != StatusFailed {
		t.Errorf("rerun: verify status = %s; want %s (re-verified, not skipped)", got, StatusFailed)
	}
	if got := rep.Stages[1].Status; got != StatusPending {
		t.Errorf("rerun: mirror status = %s; want %s", got, StatusPending)
	}
	at, _ := name.ParseReference(mirror + "/siderolabs/qemu-guest-agent@" + moved.DigestStr())
	if _, err := remote.Head(at); err == nil {
		t.Errorf("the unverified %s reached the mirror", moved.DigestStr())
	}
}

// TestItem1MirrorUsesVerifiedDigest is issue 12 item 1 within one run and on resume:
// mirror copies the digest verify recorded (not the tag resolved again), and a rerun
// whose tags have not moved skips verify and restores its digests for mirror.
func TestItem1MirrorUsesVerifiedDigest(t *testing.T) {
	t.Parallel()
	s := newHandoffSite(t)
	report := filepath.Join(t.TempDir(), "build.json")
	mirror := verifytest.Registry(t)

	rep, err := s.run(t, report, s.config(verifytest.ClosedAddr(t)))
	if err == nil {
		t.Fatalf("first run with the mirror down = nil error; want mirror failed")
	}
	rep, err = s.run(t, report, s.config(mirror))
	if err != nil {
		t.Fatalf("rerun = %v; want nil", err)
	}
	if got := rep.Stages[0].Status; got != StatusSkipped {
		t.Errorf("rerun with the tag unchanged: verify status = %s; want %s", got, StatusSkipped)
	}
	var mrep registry.Report
	if err := json.Unmarshal(rep.Stages[1].Summary, &mrep); err != nil {
		t.Fatal(err)
	}
	if len(mrep.Images) != 1 || mrep.Images[0].Digest != s.signed.DigestStr() || mrep.Images[0].DigestSource == "upstream" {
		t.Errorf("mirror images = %+v; want %s from verify, not resolved upstream", mrep.Images, s.signed.DigestStr())
	}
}

// TestPinVerified checks the hand-off itself: verified digests fill unpinned placements
// (canonical keys, so any spelling matches) and a conflicting lock pin is refused.
func TestPinVerified(t *testing.T) {
	t.Parallel()
	const a, b = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	verified := verify.VerifiedDigests(&verify.Report{Results: []verify.Result{
		{Image: "GHCR.IO/siderolabs/kubelet:v1.32.3", Digest: a, Verdict: verify.Verified},
		{Image: "ghcr.io/siderolabs/etcd:v3", Digest: b, Verdict: verify.Failed},
	}})
	ps := []registry.Placement{{Image: registry.Image{Ref: "ghcr.io/siderolabs/kubelet:v1.32.3"}}, {Image: registry.Image{Ref: "ghcr.io/siderolabs/etcd:v3"}}}
	if err := registry.PinVerified(ps, verified); err != nil || ps[0].Digest != a || ps[1].Digest != "" {
		t.Errorf("PinVerified = %v, digests %q %q; want %s and none (etcd failed verification)", err, ps[0].Digest, ps[1].Digest, a)
	}
	ps[0].Digest = b
	if err := registry.PinVerified(ps, verified); !errors.Is(err, registry.ErrDigestConflict) {
		t.Errorf("PinVerified(lock pins another digest) = %v; want ErrDigestConflict", err)
	}
}

// TestItem1MirrorAloneUsesTheEarlierVerification: `--stages mirror` after a build that
// verified takes the verified digests from the report (re-checked), and refuses when a
// verified tag has moved since, instead of mirroring what nobody verified.
func TestItem1MirrorAloneUsesTheEarlierVerification(t *testing.T) {
	t.Parallel()
	for _, move := range []bool{false, true} {
		s := newHandoffSite(t)
		report := filepath.Join(t.TempDir(), "build.json")
		mirror := verifytest.Registry(t)
		if _, err := s.run(t, report, s.config(mirror), StageVerify); err != nil {
			t.Fatalf("verify = %v", err)
		}
		want := s.signed.DigestStr()
		if move {
			want = verifytest.PushRandom(t, s.ref).DigestStr()
		}
		rep, err := s.run(t, report, s.config(mirror), StageMirror)
		at, _ := name.ParseReference(mirror + "/siderolabs/qemu-guest-agent@" + want)
		_, headErr := remote.Head(at)
		switch {
		case move && (!errors.Is(err, ErrUnverified) || !errors.Is(err, fail.ErrPolicy) || headErr == nil):
			t.Errorf("mirror alone after the tag moved = %v (stages %+v), moved digest at the mirror: %v; want ErrUnverified and nothing mirrored", err, rep.Stages, headErr == nil)
		case !move && (err != nil || headErr != nil):
			t.Errorf("mirror alone after verify = %v, verified digest at the mirror: %v; want it mirrored", err, headErr)
		}
	}
}
