package upgrade

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// stubCluster is the state the talosctl/kubectl stubs in testdata/stub read and write.
type stubCluster struct {
	dir string
	inv *Inventory
}

func newStubCluster(t *testing.T, inv *Inventory, api string) *stubCluster {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	c := &stubCluster{dir: t.TempDir(), inv: inv}
	for _, d := range []string{"ver", "name", "schem", "kubelet", "fail", "nvidia", "snapshots"} {
		if err := os.MkdirAll(filepath.Join(c.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range inv.Nodes {
		c.write(t, "ver/"+n.Address, n.Talos)
		c.write(t, "name/"+n.Address, n.Name)
		c.write(t, "schem/"+n.Name, n.Schematic)
		c.write(t, "kubelet/"+n.Name, "v"+n.Kubernetes)
		if n.GPU || n.Profile == "gpu" {
			c.write(t, "nvidia/"+n.Name, "")
		}
	}
	c.write(t, "api", api)
	return c
}

func (c *stubCluster) write(t *testing.T, name, value string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(c.dir, name), []byte(value+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (c *stubCluster) read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// run runs the script against the stubs; it returns the calls it made and its output.
func (c *stubCluster) run(t *testing.T, script string) (calls []string, out string, err error) {
	t.Helper()
	before := c.read(t, "calls.log")
	stubs, _ := filepath.Abs(filepath.Join("testdata", "stub"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+stubs+":"+os.Getenv("PATH"), "STATE="+c.dir,
		"SNAPSHOT_DIR="+filepath.Join(c.dir, "snapshots"), "GPU_CHECK_TRIES=1")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err = cmd.Run()
	after := c.read(t, "calls.log")
	if rest := strings.TrimPrefix(after, before); strings.TrimSpace(rest) != "" {
		calls = strings.Split(strings.TrimSpace(rest), "\n")
	}
	return calls, buf.String(), err
}

// TestScriptRerunAfterFailure: a worker fails mid-hop (v1.8.4) while its sibling in
// the parallel batch is still upgrading. The script waits for the sibling, exits
// non-zero naming the failed node; the re-run issues no downgrade and no repeated
// upgrade, and finishes at the target.
func TestScriptRerunAfterFailure(t *testing.T) {
	t.Parallel()
	inv := readInventory(t, "cluster.yaml")
	p := clusterPlan(t, Options{To: "v1.10.x", Parallel: 2})
	var buf bytes.Buffer
	if err := WriteScript(&buf, p); err != nil {
		t.Fatal(err)
	}
	c := newStubCluster(t, inv, "v1.30.3")
	c.write(t, "fail/10.0.0.22-v1.8.4", "") // worker-2, batched with worker-1 in hop 2

	calls, out, err := c.run(t, buf.String())
	if err == nil {
		t.Fatalf("first run succeeded; want it to stop at worker-2's failure:\n%s", out)
	}
	if !strings.Contains(out, "upgrade failed on: worker-2") {
		t.Errorf("first run output lacks the failed node:\n%s", out)
	}
	// The sibling finished before the script exited: nothing left running.
	if !slices.Contains(calls, "done worker-1 v1.8.4") || c.read(t, "ver/10.0.0.21") != "v1.8.4" {
		t.Errorf("first run: worker-1 (sibling) did not finish its v1.8.4 upgrade before exit; calls:\n%s", strings.Join(calls, "\n"))
	}
	if slices.Contains(calls, "upgrade cp-1 v1.8.4 -> v1.9.6") {
		t.Errorf("first run went on past the failed batch")
	}

	calls2, out, err := c.run(t, buf.String())
	if err != nil {
		t.Fatalf("re-run failed: %v\n%s", err, out)
	}
	if v := c.read(t, "violations"); v != "" {
		t.Errorf("re-run issued downgrades or repeated upgrades:\n%s", v)
	}
	for _, call := range calls2 {
		if strings.HasPrefix(call, "upgrade ") && strings.Contains(call, "-> v1.7.7") {
			t.Errorf("re-run replayed hop 1: %s", call)
		}
	}
	// Every node ends at the target, upgraded once per hop overall.
	done := map[string]int{}
	for _, call := range append(calls, calls2...) {
		if strings.HasPrefix(call, "done ") {
			done[call]++
		}
	}
	for _, n := range inv.Nodes {
		if got := c.read(t, "ver/"+n.Address); got != "v1.10.9" {
			t.Errorf("after the re-run %s runs %s; want v1.10.9", n.Name, got)
		}
		for _, v := range []string{"v1.8.4", "v1.9.6", "v1.10.9"} {
			if got := done["done "+n.Name+" "+v]; got != 1 {
				t.Errorf("%s upgraded to %s %d times; want once", n.Name, v, got)
			}
		}
	}
	if got := c.read(t, "api"); got != "v1.33.6" {
		t.Errorf("after the re-run the API server runs %s; want v1.33.6", got)
	}
	checkOrder(t, append(calls, calls2...))
}

// checkOrder: an etcd snapshot right before each control-plane upgrade, a dry run
// right before each upgrade-k8s, and an NVIDIA check before each uncordon (the stub
// logs reads only through the uncordon order: uncordon follows the GPU node's health).
func checkOrder(t *testing.T, calls []string) {
	t.Helper()
	for i, call := range calls {
		f := strings.Fields(call)
		switch {
		case f[0] == "upgrade" && strings.HasPrefix(f[1], "cp-"):
			if i == 0 || !strings.HasPrefix(calls[i-1], "etcd-snapshot "+f[1]+" ") {
				t.Errorf("call %d %q: no etcd snapshot of %s right before it", i, call, f[1])
			}
		case f[0] == "upgrade-k8s":
			if i == 0 || calls[i-1] != "upgrade-k8s-dry-run "+f[1] {
				t.Errorf("call %d %q: no upgrade-k8s --dry-run right before it", i, call)
			}
		}
	}
	snap := regexp.MustCompile(`^etcd-snapshot cp-\d \S+/etcd-cp-\d-\d{8}T\d{6}Z\.snapshot$`)
	for _, call := range calls {
		if strings.HasPrefix(call, "etcd-snapshot") && !snap.MatchString(call) {
			t.Errorf("%q: want a dated snapshot file per node", call)
		}
	}
}

// TestScriptKubernetesRerunSafe: with Kubernetes already at a step's version, or
// past it, upgrade-k8s is not issued again (and never backwards).
func TestScriptKubernetesRerunSafe(t *testing.T) {
	t.Parallel()
	inv := readInventory(t, "cluster.yaml")
	p := clusterPlan(t, Options{To: "v1.10.x", Parallel: 2})
	var buf bytes.Buffer
	if err := WriteScript(&buf, p); err != nil {
		t.Fatal(err)
	}
	c := newStubCluster(t, inv, "v1.30.3")
	if _, out, err := c.run(t, buf.String()); err != nil {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	calls, out, err := c.run(t, buf.String())
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	for _, call := range calls {
		if strings.HasPrefix(call, "upgrade") || strings.HasPrefix(call, "etcd-snapshot") || strings.HasPrefix(call, "drain") {
			t.Errorf("second run of a finished plan issued %q", call)
		}
	}
	if v := c.read(t, "violations"); v != "" {
		t.Errorf("violations: %s", v)
	}
}

// TestScriptRejectsUntypedValues: a value that is not what its field holds is
// refused, not pasted (a plan is JSON anyone can edit; the script is code).
func TestScriptRejectsUntypedValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(p *Plan)
	}{
		{"address", func(p *Plan) { p.Hops[0].Steps[len(p.Hops[0].Steps)-1].Address = "10.0.0.1; touch X" }},
		{"image", func(p *Plan) {
			for i, s := range p.Hops[0].Steps {
				if s.Action == ActionUpgrade {
					p.Hops[0].Steps[i].Image = "factory.talos.dev/installer/x:v1.7.7 $(touch X)"
					return
				}
			}
		}},
		{"health timeout", func(p *Plan) { p.HealthTimeout = "10m; touch X #" }},
		{"node", func(p *Plan) {
			for i, s := range p.Hops[0].Steps {
				if s.Action == ActionUpgrade {
					p.Hops[0].Steps[i].Node = "w`id`"
					return
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := clusterPlan(t, Options{To: "v1.10.x", Parallel: 2})
			tt.edit(p)
			var buf bytes.Buffer
			err := WriteScript(&buf, p)
			if err == nil || buf.Len() != 0 {
				t.Errorf("WriteScript(bad %s) = %v with %d bytes; want an error and no script", tt.name, err, buf.Len())
			}
		})
	}
}

// TestScriptShellcheck runs shellcheck on a script with every kind of step.
func TestScriptShellcheck(t *testing.T) {
	t.Parallel()
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck not installed")
	}
	p := clusterPlan(t, Options{To: "v1.10.x", Parallel: 2})
	var buf bytes.Buffer
	if err := WriteScript(&buf, p); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sc, "-s", "bash", "-")
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

var _ = fmt.Sprint

// TestScriptVersionOrder runs the script's version_lt on its own: semver order, where a
// prerelease comes before its release (sort -V alone puts v1.10.0-beta.1 after v1.10.0,
// so a node on the beta was "past" the release and never upgraded, and a node on the
// release was "behind" the beta and downgraded to it).
func TestScriptVersionOrder(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	tests := []struct {
		a, b string
		want bool
	}{
		{"v1.9.5", "v1.10.0", true},
		{"v1.10.0", "v1.9.5", false},
		{"v1.10.0", "v1.10.0", false},
		{"v1.10.0-beta.1", "v1.10.0", true},
		{"v1.10.0", "v1.10.0-beta.1", false},
		{"v1.10.0-alpha.2", "v1.10.0-beta.0", true},
		{"v1.10.0-beta.0", "v1.10.0-alpha.2", false},
		{"v1.10.0-beta.1", "v1.10.0-beta.2", true},
		{"v1.10.0-beta.2", "v1.10.0-beta.10", true},
		{"v1.10.0-rc.1", "v1.10.0-beta.3", false},
		{"v1.9.6", "v1.10.0-alpha.0", true},
		{"v1.10.0-alpha.0", "v1.9.6", false},
		{"v1.32.2", "v1.32.10", true},
	}
	for _, tt := range tests {
		out, err := exec.Command("bash", "-c", scriptPrelude+`
if version_lt "$1" "$2"; then echo true; else echo false; fi`, "version_lt", tt.a, tt.b).CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		if got := strings.TrimSpace(string(out)) == "true"; got != tt.want {
			t.Errorf("version_lt(%q, %q) = %v; want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
