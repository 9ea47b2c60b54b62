package verify

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/pipeline/verify/verifytest"
)

func TestPlanTouchesNothing(t *testing.T) {
	t.Parallel()
	dead := verifytest.ClosedAddr(t) // any registry access would show as an error verdict
	fp := FactoryPolicy([]string{"factory.talos.dev"}, nil)
	fp.Note = "key from https://factory.talos.dev/oci/cosign/signing-key.pub"
	v, err := New([]Policy{SideroPolicy(), fp},
		WithMirror(mirrorTo(dead)),
		WithTrust(func(context.Context) (root.TrustedMaterial, error) {
			t.Error("Plan loaded the trust root")
			return nil, errors.New("no")
		}))
	if err != nil {
		t.Fatal(err)
	}
	images := []Image{
		{Ref: "ghcr.io/siderolabs/installer:v1.9.5", Role: "installer"},
		{Ref: "factory.talos.dev/installer/abc:v1.9.5", Role: RoleFactoryInstaller},
		{Ref: "registry.k8s.io/pause:3.10", Role: "pause"},
	}
	rep := v.Plan(images)
	want := []struct {
		verdict Verdict
		policy  string
		reason  string
	}{
		{Planned, PolicySidero, ""},
		{Planned, PolicyFactory, "signing-key.pub"},
		{Skipped, "", "no signature policy covers"},
	}
	for i, w := range want {
		r := rep.Results[i]
		if r.Verdict != w.verdict || r.Policy != w.policy || !strings.Contains(r.Reason, w.reason) {
			t.Errorf("Plan(%q) = %q/%q/%q; want %q/%q/…%q…", images[i].Ref, r.Verdict, r.Policy, r.Reason, w.verdict, w.policy, w.reason)
		}
	}
	if !strings.HasPrefix(rep.Results[0].Source, dead+"/ghcr.io/") {
		t.Errorf("Plan(%q) source = %q; want the mirror reference", images[0].Ref, rep.Results[0].Source)
	}
	if !rep.DryRun || rep.Summary.Planned != 2 || rep.Summary.Skipped != 1 || rep.Err() != nil {
		t.Errorf("Plan() report = %+v, Err() = %v; want a dry-run with 2 planned, 1 skipped, no error", rep.Summary, rep.Err())
	}
}

func TestVerifyBatch(t *testing.T) {
	t.Parallel()
	host := verifytest.Registry(t)
	sv, pemKey := verifytest.NewKey(t)
	var images []Image
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		ref := host + "/batch/" + n + ":v1"
		d := verifytest.PushRandom(t, ref)
		if n != "e" {
			verifytest.SignWithKey(t, sv, d, verifytest.SigOpts{})
		}
		images = append(images, Image{Ref: ref})
	}
	var progressed atomic.Int32
	trustLoads := 0
	v, err := New([]Policy{
		{Name: "k", Match: []string{"*/batch/**"}, Keys: []Key{mustKey(t, "k.pub", pemKey)}},
		SideroPolicy(),
	},
		WithJobs(2),
		WithMirror(mirrorTo(host)),
		WithProgress(func(done, total int, r Result) {
			progressed.Add(1)
			if total != len(images) || done < 1 || done > total {
				t.Errorf("progress(%d, %d) out of range", done, total)
			}
		}),
		WithTrust(func(context.Context) (root.TrustedMaterial, error) { trustLoads++; return nil, errors.New("offline") }))
	if err != nil {
		t.Fatal(err)
	}
	// Keyless images when the trust root cannot be loaded: an error verdict, loaded once.
	for _, n := range []string{"x", "y"} {
		ref := "ghcr.io/siderolabs/" + n + ":v1"
		verifytest.PushRandom(t, host+"/"+ref)
		images = append(images, Image{Ref: ref})
	}
	rep, err := v.Verify(t.Context(), images)
	if err != nil {
		t.Fatalf("Verify() = %v", err)
	}
	for i, r := range rep.Results {
		if r.Image != images[i].Ref {
			t.Errorf("Verify() result %d is %q; want input order (%q)", i, r.Image, images[i].Ref)
		}
	}
	s := rep.Summary
	if s.Total != 7 || s.Verified != 4 || s.Missing != 1 || s.Errors != 2 {
		t.Errorf("Verify() summary = %+v; want 4 verified, 1 missing, 2 errors", s)
	}
	for _, r := range rep.Results[5:] {
		if !strings.Contains(r.Reason, "offline") {
			t.Errorf("Verify(%q) reason = %q; want the trust root error", r.Image, r.Reason)
		}
	}
	if trustLoads != 1 {
		t.Errorf("trust root loaded %d times; want once", trustLoads)
	}
	if got := progressed.Load(); got != 7 {
		t.Errorf("progress called %d times; want 7", got)
	}
	if err := rep.Err(); !errors.Is(err, fail.ErrPolicy) || !strings.Contains(err.Error(), "/batch/e:v1") {
		t.Errorf("Report.Err() = %v; want a policy failure naming the unsigned image", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := v.Verify(ctx, images); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify(cancelled) = %v; want context.Canceled", err)
	}
}
