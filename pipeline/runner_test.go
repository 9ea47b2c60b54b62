package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/site"
)

type calls struct{ names []string }

// vanillaID is the ID of the schematic without customizations ("{}"): locks are
// validated when read, so the fake stages write consistent ones.
const vanillaID = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"

func fakeStages(c *calls, failAt string, failErr error) []Stage {
	var out []Stage
	for _, name := range Order {
		out = append(out, Stage{Name: name, Run: func(_ context.Context, st *State) (any, error) {
			c.names = append(c.names, name)
			if name == failAt {
				return nil, failErr
			}
			switch name {
			case StageResolve:
				st.Lock = &site.Lock{Schema: site.LockSchema, Talos: "v1.9.6", Profiles: []site.Profile{{Name: "worker",
					Schematic: site.Schematic{ID: vanillaID, YAML: "{}"}}}}
			case StageFetch:
				if !st.DryRun {
					st.Lock.Profiles[0].Artifacts = []site.Artifact{{Kind: "iso", SHA256: "sha256:" + strings.Repeat("a", 64),
						URL: "https://factory.example/image/" + vanillaID + "/v1.9.6/nocloud-amd64.iso"}}
				}
			}
			st.Emit("working")
			return map[string]string{"stage": name}, nil
		}})
	}
	return out
}

func TestRunResumesAfterFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	report := filepath.Join(dir, "build.json")
	lockPath := filepath.Join(dir, "imgpipe.lock.json")
	boom := errors.New("mirror unreachable")

	var first calls
	var events []Event
	r, err := New(fakeStages(&first, StageMirror, boom), WithReport(report), WithLockFile(lockPath),
		WithEvents(func(e Event) { events = append(events, e) }))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background(), Order, &State{})
	if !errors.Is(err, boom) {
		t.Fatalf("Run() = %v; want the mirror failure", err)
	}
	if got, want := first.names, []string{"resolve", "schematic", "verify", "fetch", "mirror"}; !reflect.DeepEqual(got, want) {
		t.Errorf("first run ran %v; want %v", got, want)
	}
	if got := rep.Stages[len(rep.Stages)-1].Status; got != StatusPending {
		t.Errorf("upload after a failed mirror: status %s; want %s", got, StatusPending)
	}
	// fetch changed the lock: it was written back.
	l, err := site.ReadLock(lockPath)
	if err != nil || len(l.Profiles[0].Artifacts) != 1 {
		t.Fatalf("lock after fetch: %v, %+v; want the recorded artifact", err, l)
	}
	if len(events) == 0 {
		t.Error("no progress events")
	}

	// Second run: the finished stages for the same lock are skipped; mirror and upload run.
	var second calls
	r2, _ := New(fakeStages(&second, "", nil), WithReport(report), WithLockFile(lockPath))
	rep2, err := r2.Run(context.Background(), Order, &State{})
	if err != nil {
		t.Fatalf("second Run() = %v", err)
	}
	if got, want := second.names, []string{"resolve", "mirror", "upload"}; !reflect.DeepEqual(got, want) {
		t.Errorf("resumed run ran %v; want %v", got, want)
	}
	statuses := map[string]string{}
	for _, s := range rep2.Stages {
		statuses[s.Name] = s.Status
	}
	want := map[string]string{"resolve": "done", "schematic": "skipped", "verify": "skipped", "fetch": "skipped", "mirror": "done", "upload": "done"}
	if !reflect.DeepEqual(statuses, want) {
		t.Errorf("resumed statuses = %v; want %v", statuses, want)
	}
	// The report on disk is the second run's.
	var onDisk Report
	data, _ := os.ReadFile(report)
	if err := json.Unmarshal(data, &onDisk); err != nil || onDisk.Stages[4].Status != StatusDone {
		t.Errorf("report on disk: %v, %+v", err, onDisk.Stages)
	}
}

func TestRunChangedLockRedoesEverything(t *testing.T) {
	t.Parallel()
	report := filepath.Join(t.TempDir(), "build.json")
	var c1 calls
	r, _ := New(fakeStages(&c1, "", nil), WithReport(report))
	if _, err := r.Run(context.Background(), Order, &State{}); err != nil {
		t.Fatal(err)
	}
	// A different resolution (new Talos patch) must not reuse the old stages.
	var c2 calls
	stages := fakeStages(&c2, "", nil)
	stages[0].Run = func(_ context.Context, st *State) (any, error) {
		c2.names = append(c2.names, StageResolve)
		st.Lock = &site.Lock{Schema: site.LockSchema, Talos: "v1.9.7", Profiles: []site.Profile{{Name: "worker"}}}
		return nil, nil
	}
	r2, _ := New(stages, WithReport(report))
	if _, err := r2.Run(context.Background(), Order, &State{}); err != nil {
		t.Fatal(err)
	}
	if len(c2.names) != len(Order) {
		t.Errorf("run after the lock changed ran %v; want every stage", c2.names)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	report := filepath.Join(dir, "build.json")
	lockPath := filepath.Join(dir, "lock.json")
	var c calls
	r, _ := New(fakeStages(&c, "", nil), WithReport(report), WithLockFile(lockPath))
	rep, err := r.Run(context.Background(), Order, &State{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Stages {
		if s.Status != StatusPlanned {
			t.Errorf("dry run: stage %s status %s; want planned", s.Name, s.Status)
		}
	}
	for _, p := range []string{report, lockPath} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("dry run wrote %s", p)
		}
	}
}

func TestParseStages(t *testing.T) {
	t.Parallel()
	got, err := ParseStages([]string{"upload", "resolve", "fetch", "fetch"})
	if err != nil || !reflect.DeepEqual(got, []string{"resolve", "fetch", "upload"}) {
		t.Errorf("ParseStages = %v, %v; want resolve,fetch,upload in order", got, err)
	}
	if _, err := ParseStages([]string{"deploy"}); err == nil {
		t.Error("ParseStages(deploy) = nil; want error")
	}
	all, _ := ParseStages(nil)
	if !reflect.DeepEqual(all, Order) {
		t.Errorf("ParseStages(nil) = %v; want %v", all, Order)
	}
}

func TestStageWithoutLock(t *testing.T) {
	t.Parallel()
	var c calls
	r, _ := New(fakeStages(&c, "", nil))
	_, err := r.Run(context.Background(), []string{StageFetch}, &State{})
	if err == nil {
		t.Error("fetch without a lock: nil error; want one naming the missing lock")
	}
}

// TestResumeRestoresArtifacts: a resumed build whose lock file was lost (or is given at
// another path) skips fetch, so it takes the artifacts fetch recorded from the report;
// otherwise the lock it writes has no checksums and upload asks for a fetch that the
// resume will never run.
func TestResumeRestoresArtifacts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	report := filepath.Join(dir, "build.json")
	lockPath := filepath.Join(dir, "imgpipe.lock.json")
	var first calls
	r, _ := New(fakeStages(&first, StageUpload, errors.New("PVE unreachable")), WithReport(report), WithLockFile(lockPath))
	if _, err := r.Run(context.Background(), Order, &State{}); err == nil {
		t.Fatal("first Run() = nil; want the upload failure")
	}
	if err := os.Remove(lockPath); err != nil {
		t.Fatal(err)
	}
	var second calls
	stages := fakeStages(&second, "", nil)
	var atUpload []site.Artifact
	stages[len(stages)-1].Run = func(_ context.Context, st *State) (any, error) {
		second.names = append(second.names, StageUpload)
		atUpload = st.Lock.Profiles[0].Artifacts
		return nil, nil
	}
	r2, _ := New(stages, WithReport(report), WithLockFile(lockPath))
	rep, err := r2.Run(context.Background(), Order, &State{})
	if err != nil {
		t.Fatalf("resumed Run() = %v", err)
	}
	if got, want := second.names, []string{"resolve", "upload"}; !reflect.DeepEqual(got, want) {
		t.Errorf("resumed run ran %v; want %v", got, want)
	}
	want := []site.Artifact{{Kind: "iso", SHA256: "sha256:" + strings.Repeat("a", 64),
		URL: "https://factory.example/image/" + vanillaID + "/v1.9.6/nocloud-amd64.iso"}}
	if !reflect.DeepEqual(atUpload, want) {
		t.Errorf("upload saw artifacts %+v; want fetch's %+v from the report", atUpload, want)
	}
	if l, err := site.ReadLock(lockPath); err != nil || !reflect.DeepEqual(l.Profiles[0].Artifacts, want) {
		t.Errorf("lock file after the resume: %v, %+v; want fetch's artifacts", err, l)
	}
	if rep.Lock == nil || !reflect.DeepEqual(rep.Lock.Profiles[0].Artifacts, want) {
		t.Errorf("report lock = %+v; want fetch's artifacts", rep.Lock)
	}
}
