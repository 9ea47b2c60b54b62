package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// upgrade-plan's fixtures and goldens live with the planner, in upgrade/testdata.
const upgradeTestdata = "../../upgrade/testdata"

func runUpgradePlan(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"upgrade-plan"}, args...), strings.NewReader(""), &out, &errb,
		func(string) string { return "" })
	return out.String(), errb.String(), code
}

func upgradeGolden(t *testing.T, name, got string) {
	t.Helper()
	goldenAt(t, filepath.Join(upgradeTestdata, "golden"), name, got)
}

func TestUpgradePlanGolden(t *testing.T) {
	t.Parallel()
	base := []string{"--inventory", upgradeTestdata + "/cluster.yaml", "--config", upgradeTestdata + "/site.yaml", "--to", "v1.10.x", "--parallel", "2"}
	tests := []struct {
		golden string
		args   []string
	}{
		{"cli-cluster-v1.10.txt", nil},
		{"cli-cluster-v1.10.json", []string{"-o", "json"}},
		{"cli-cluster-v1.10.sh", []string{"-o", "script"}},
		{"cli-cluster-v1.10.tuppr.yaml", []string{"-o", "tuppr"}},
		{"cli-cluster-v1.10-minimal.txt", []string{"--path", "minimal"}},
		{"cli-k8s-old-v1.13.txt", []string{"--inventory", upgradeTestdata + "/k8s-old.yaml", "--to", "v1.13.x"}},
		// Golden scripts: kubelet skew catch-up (1.28 kubelet, control plane 1.31 -> 1.32).
		{"cli-skew-v1.9-k8s-1.32.sh", []string{"--inventory", upgradeTestdata + "/skew.yaml", "--to", "v1.9.x", "--kubernetes", "1.32", "-o", "script"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runUpgradePlan(t, append(append([]string{}, base...), tt.args...)...)
			if code != exitOK {
				t.Fatalf("imgpipe upgrade-plan %v = exit %d; want 0\n%s", tt.args, code, stderr)
			}
			upgradeGolden(t, tt.golden, stdout)
		})
	}
}

// TestUpgradePlanJSONContract checks the documented minimum of the JSON contract:
// {"hops": [{"talos", "kubernetes", "profiles": [{"name", "schematic", "installer"}],
// "steps": [{"node", "action", "image", "command"}]}]}.
func TestUpgradePlanJSONContract(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := runUpgradePlan(t, "--inventory", upgradeTestdata+"/cluster.yaml", "--config", upgradeTestdata+"/site.yaml",
		"--to", "v1.10.x", "-o", "json")
	if code != exitOK {
		t.Fatalf("upgrade-plan -o json = exit %d; want 0\n%s", code, stderr)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("upgrade-plan -o json is not JSON: %v", err)
	}
	if doc["schema"] != "imgpipe.dev/upgrade-plan/v1" {
		t.Errorf("schema = %v; want imgpipe.dev/upgrade-plan/v1", doc["schema"])
	}
	hops, _ := doc["hops"].([]any)
	if len(hops) != 4 {
		t.Fatalf("hops = %d; want 4", len(hops))
	}
	has := func(where string, m map[string]any, keys ...string) {
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("%s lacks %q: %v", where, k, m)
			}
		}
	}
	for _, h := range hops {
		hop := h.(map[string]any)
		has("hop", hop, "talos", "kubernetes", "profiles", "steps")
		for _, p := range hop["profiles"].([]any) {
			has("profile", p.(map[string]any), "name", "schematic", "installer")
		}
		for _, s := range hop["steps"].([]any) {
			has("step", s.(map[string]any), "node", "action", "image", "command")
		}
	}
}

func TestUpgradePlanExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("nodes:\n  - name: cp-1\n    role: boss\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := upgradeTestdata + "/site.yaml"
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"kubernetes too new for the hop", []string{"--inventory", upgradeTestdata + "/k8s-new.yaml", "--config", cfg, "--to", "v1.9.x"}, exitPolicy, "hop 1 (Talos v1.8.4)"},
		{"GPU driver has no build in a hop", []string{"--inventory", upgradeTestdata + "/gpu-550.yaml", "--config", cfg, "--to", "v1.10.x"}, exitPolicy, "hop 2 (Talos v1.10.9)"},
		{"extension dropped", []string{"--inventory", upgradeTestdata + "/drop.yaml", "--config", cfg, "--to", "v1.10.x"}, exitPolicy, "siderolabs/iscsi-tools"},
		{"no inventory", []string{"--to", "v1.10.x"}, exitUsage, "--inventory or --kubeconfig is required"},
		{"missing inventory file", []string{"--inventory", filepath.Join(dir, "none.yaml"), "--to", "v1.10.x"}, exitUsage, "reading inventory"},
		{"bad inventory", []string{"--inventory", bad, "--to", "v1.10.x"}, exitUsage, "bad.yaml:3: nodes[0].role"},
		{"unknown output", []string{"--inventory", upgradeTestdata + "/single.yaml", "--to", "v1.9.x", "-o", "xml"}, exitUsage, "unknown output format"},
		{"unknown path", []string{"--inventory", upgradeTestdata + "/single.yaml", "--to", "v1.9.x", "--path", "fast"}, exitUsage, "conservative or minimal"},
		{"default site: production GPU track has no v1.7 build", []string{"--inventory", upgradeTestdata + "/cluster.yaml", "--to", "v1.10.x"}, exitPolicy, "hop 1 (Talos v1.7.7), for nodes gpu-1"},
		{"single node, default site", []string{"--inventory", upgradeTestdata + "/single.yaml", "--to", "v1.9.x"}, exitOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, code := runUpgradePlan(t, tt.args...)
			if code != tt.code {
				t.Errorf("imgpipe upgrade-plan %v = exit %d; want %d\n%s", tt.args, code, tt.code, stderr)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("imgpipe upgrade-plan %v stderr = %q; want it to mention %q", tt.args, stderr, tt.stderr)
			}
		})
	}
}
