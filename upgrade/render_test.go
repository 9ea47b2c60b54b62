package upgrade

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func clusterPlan(t *testing.T, opts Options) *Plan {
	t.Helper()
	p, err := planFor(t, "cluster.yaml", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWriteScript(t *testing.T) {
	t.Parallel()
	p := clusterPlan(t, Options{To: "v1.10.x", Parallel: 2})
	var buf bytes.Buffer
	if err := WriteScript(&buf, p); err != nil {
		t.Fatal(err)
	}
	script := buf.String()
	if !strings.HasPrefix(script, "#!/usr/bin/env bash\n") || !strings.Contains(script, "\nset -euo pipefail\n") {
		t.Errorf("WriteScript() lacks the shebang or set -euo pipefail:\n%s", script[:min(len(script), 400)])
	}
	// Every step's command appears, in plan order.
	pos := 0
	upgrades := 0
	for _, h := range p.Hops {
		for _, s := range h.Steps {
			i := strings.Index(script[pos:], s.Command)
			if i < 0 {
				t.Fatalf("WriteScript(): hop %s step %s %s: command %q missing or out of order", h.Talos, s.Action, s.Node, s.Command)
			}
			pos += i + len(s.Command)
			if s.Action == ActionUpgrade {
				upgrades++
			}
		}
	}
	// Every talosctl upgrade pins a factory installer: a bare or generic installer
	// would strip the node's extensions.
	re := regexp.MustCompile(`(?m)^talosctl upgrade --nodes \S+ --image factory\.talos\.dev/(installer|nocloud-installer)/[0-9a-f]{64}:v\d+\.\d+\.\d+( --preserve)?( &)?$`)
	if got := len(re.FindAllString(script, -1)); got != upgrades {
		t.Errorf("WriteScript(): %d pinned talosctl upgrade lines; want %d (one per upgrade step)", got, upgrades)
	}
	if got := strings.Count(script, "talosctl upgrade "); got != upgrades {
		t.Errorf("WriteScript(): %d talosctl upgrade lines; want %d", got, upgrades)
	}
	// The batch of two workers runs in parallel and waits for each job by PID, so a
	// failed upgrade stops the script.
	if !strings.Contains(script, "pids+=($!)") || !strings.Contains(script, `for pid in "${pids[@]}"; do wait "$pid"; done`) {
		t.Errorf("WriteScript(): no parallel batch with per-PID wait")
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bash, "-n")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("bash -n on the script: %v\n%s", err, out)
		}
	}
}

func TestWriteScriptNothingToDo(t *testing.T) {
	t.Parallel()
	p, err := planFor(t, "", `nodes:
  - {name: cp-1, address: 10.5.0.11, role: controlplane, profile: controlplane, talos: v1.10.9, kubernetes: 1.33.6}
`, Options{To: "v1.10.x"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteScript(&buf, p); err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?m)^(talosctl|kubectl|imgpipe|crane) `).MatchString(buf.String()) || !strings.Contains(buf.String(), "nothing to do") {
		t.Errorf("WriteScript(no hops) =\n%s\nwant a script that says there is nothing to do", buf.String())
	}
}

// The fields of tuppr's CRDs (tuppr.home-operations.com/v1alpha1) that imgpipe emits;
// decoding with KnownFields catches a misspelt field.
type tupprDoc struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		Talos *struct {
			Version string `yaml:"version"`
		} `yaml:"talos"`
		Kubernetes *struct {
			Version string `yaml:"version"`
		} `yaml:"kubernetes"`
		NodeSelector *struct {
			MatchExpressions []struct {
				Key      string   `yaml:"key"`
				Operator string   `yaml:"operator"`
				Values   []string `yaml:"values"`
			} `yaml:"matchExpressions"`
		} `yaml:"nodeSelector"`
		Parallelism *int `yaml:"parallelism"`
		Drain       *struct {
			Enabled bool `yaml:"enabled"`
		} `yaml:"drain"`
		HealthChecks []struct {
			APIVersion  string `yaml:"apiVersion"`
			Kind        string `yaml:"kind"`
			Expr        string `yaml:"expr"`
			Timeout     string `yaml:"timeout"`
			Description string `yaml:"description"`
		} `yaml:"healthChecks"`
	} `yaml:"spec"`
}

func TestWriteTuppr(t *testing.T) {
	t.Parallel()
	p := clusterPlan(t, Options{To: "v1.10.x", Parallel: 2})
	var buf bytes.Buffer
	if err := WriteTuppr(&buf, p, "15m"); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	versionRE := regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-[a-zA-Z0-9\-\.]+)?$`) // the CRDs' pattern
	var got []string
	dec := yaml.NewDecoder(strings.NewReader(out))
	dec.KnownFields(true)
	for i := 0; ; i++ {
		var d tupprDoc
		if err := dec.Decode(&d); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("WriteTuppr() document %d: %v", i, err)
		}
		if d.APIVersion != "tuppr.home-operations.com/v1alpha1" {
			t.Errorf("document %d apiVersion = %q; want tuppr.home-operations.com/v1alpha1", i, d.APIVersion)
		}
		for _, hc := range d.Spec.HealthChecks {
			if hc.APIVersion == "" || hc.Kind == "" || hc.Expr == "" || hc.Timeout != "15m" {
				t.Errorf("document %d health check %+v; want apiVersion, kind, expr and timeout 15m", i, hc)
			}
		}
		switch d.Kind {
		case "TalosUpgrade":
			if d.Spec.Talos == nil || !versionRE.MatchString(d.Spec.Talos.Version) {
				t.Fatalf("document %d TalosUpgrade spec.talos = %+v; want a version like v1.10.9", i, d.Spec.Talos)
			}
			if d.Spec.NodeSelector == nil || len(d.Spec.NodeSelector.MatchExpressions) != 1 {
				t.Fatalf("document %d TalosUpgrade has no node selector", i)
			}
			nodes := d.Spec.NodeSelector.MatchExpressions[0].Values
			if d.Spec.Parallelism == nil || *d.Spec.Parallelism < 1 || *d.Spec.Parallelism > len(nodes) {
				t.Errorf("document %d parallelism = %v for %d nodes; want 1..%d (tuppr's webhook)", i, d.Spec.Parallelism, len(nodes), len(nodes))
			}
			group := strings.TrimPrefix(d.Metadata.Name, "homelab-")
			if (group == "gpu") != (d.Spec.Drain != nil && d.Spec.Drain.Enabled) {
				t.Errorf("document %d %s drain = %+v; want drain only for the gpu group", i, d.Metadata.Name, d.Spec.Drain)
			}
			got = append(got, fmt.Sprintf("%s %s %s", group, d.Spec.Talos.Version, strings.Join(nodes, ",")))
		case "KubernetesUpgrade":
			if d.Spec.Kubernetes == nil || !versionRE.MatchString(d.Spec.Kubernetes.Version) {
				t.Fatalf("document %d KubernetesUpgrade spec.kubernetes = %+v; want a version like v1.33.6", i, d.Spec.Kubernetes)
			}
			got = append(got, "kubernetes "+d.Spec.Kubernetes.Version)
		default:
			t.Errorf("document %d kind = %q; want TalosUpgrade or KubernetesUpgrade", i, d.Kind)
		}
	}
	var want []string
	for _, v := range []string{"v1.7.7", "v1.8.4", "v1.9.6", "v1.10.9"} {
		want = append(want, "controlplane "+v+" cp-1,cp-2,cp-3", "gpu "+v+" gpu-1", "workers "+v+" worker-1,worker-2,worker-3")
	}
	want = append(want, "kubernetes v1.31.4", "kubernetes v1.32.4", "kubernetes v1.33.6")
	if !slices.Equal(got, want) {
		t.Errorf("WriteTuppr() stages =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// tuppr only swaps the version of a node's install image: the hop where the GPU
	// schematic changes (-lts names) and v1.10 (platform installers) need overrides.
	for _, want := range []string{
		"kubectl annotate node gpu-1 --overwrite tuppr.home-operations.com/factory-url=factory.talos.dev/installer tuppr.home-operations.com/schematic=",
		"kubectl annotate node cp-1 --overwrite tuppr.home-operations.com/factory-url=factory.talos.dev/nocloud-installer ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("WriteTuppr() lacks %q", want)
		}
	}
	if n := strings.Count(out, "kubectl annotate node gpu-1"); n != 2 {
		t.Errorf("WriteTuppr() annotates gpu-1 %d times; want 2 (v1.8.4 schematic, v1.10.9 installer repository)", n)
	}
}

// TestImportDirection keeps the package pure: it may import site, extensions, compat
// and internal helpers, never the CLI, the pipeline or any I/O stage.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{"github.com/imgpipe/imgpipe/site", "github.com/imgpipe/imgpipe/extensions",
		"github.com/imgpipe/imgpipe/compat", "github.com/imgpipe/imgpipe/internal/"}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(path, "github.com/imgpipe/") {
				if slices.Contains([]string{"net/http", "os", "os/exec"}, path) {
					t.Errorf("%s imports %s; the planner does no I/O", f, path)
				}
				continue
			}
			if !slices.ContainsFunc(allowed, func(a string) bool { return strings.HasPrefix(path, a) }) {
				t.Errorf("%s imports %s; upgrade may import only site, extensions, compat and internal", f, path)
			}
		}
	}
}

// TestWriteTupprKubernetesOrder checks that Kubernetes steps a hop needs come before
// its TalosUpgrade stages and the steps to the target after them.
func TestWriteTupprKubernetesOrder(t *testing.T) {
	t.Parallel()
	p, err := planFor(t, "k8s-old.yaml", "", Options{To: "v1.13.x", Kubernetes: "1.32"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteTuppr(&buf, p, ""); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(buf.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "# stage "); ok {
			_, what, _ := strings.Cut(rest, ": ")
			got = append(got, what)
		}
	}
	want := []string{
		"hop 1: Talos v1.11.6, controlplane (cp-1)", "hop 1: Talos v1.11.6, workers (worker-1)",
		"hop 2: Kubernetes 1.30.5",
		"hop 2: Talos v1.12.11, controlplane (cp-1)", "hop 2: Talos v1.12.11, workers (worker-1)",
		"hop 3: Kubernetes 1.31.4",
		"hop 3: Talos v1.13.9, controlplane (cp-1)", "hop 3: Talos v1.13.9, workers (worker-1)",
		"hop 3: Kubernetes 1.32.4",
	}
	if !slices.Equal(got, want) {
		t.Errorf("WriteTuppr(k8s-old to v1.13.x, Kubernetes 1.32) stages =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
