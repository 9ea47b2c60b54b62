package upgrade

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func decodeDocs(t *testing.T, name string, data []byte) []map[string]any {
	t.Helper()
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			if errors.Is(err, io.EOF) {
				return docs
			}
			t.Fatalf("%s: %v", name, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

func dig(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

// upgradeImages maps "hop node" to the installer the plan's upgrade step uses.
func upgradeImages(p *Plan) map[string]string {
	out := map[string]string{}
	for _, h := range p.Hops {
		for _, s := range h.Steps {
			if s.Action == ActionUpgrade {
				out[fmt.Sprintf("%s %s", h.Talos, s.Node)] = s.Image
			}
		}
	}
	return out
}

// TestTupprStages checks each stage file against tuppr's CRD schemas, that every
// node's installer (as tuppr builds it from the annotations) is the script's, that
// names are unique within the file, and the stage order.
func TestTupprStages(t *testing.T) {
	t.Parallel()
	crds := loadCRDs(t)
	p := clusterPlan(t, Options{To: "v1.10.x", Parallel: 2})
	files, err := TupprFiles(p)
	if err != nil {
		t.Fatal(err)
	}
	var script bytes.Buffer
	if err := WriteScript(&script, p); err != nil {
		t.Fatal(err)
	}
	images := upgradeImages(p)
	var order []string
	for _, f := range files[:len(files)-1] {
		docs := decodeDocs(t, f.Name, f.Data)
		seen := map[string]bool{}
		installers := map[string]string{}
		var stage string
		for _, d := range docs {
			kind, _ := d["kind"].(string)
			name, _ := dig(d, "metadata", "name").(string)
			if seen[kind+"/"+name] {
				t.Errorf("%s: %s/%s appears twice in one applied unit", f.Name, kind, name)
			}
			seen[kind+"/"+name] = true
			switch kind {
			case "Node":
				ann, _ := dig(d, "metadata", "annotations").(map[string]any)
				if len(d) != 3 || len(ann) != 2 {
					t.Errorf("%s: Node %s = %v; want only apiVersion, kind and the two tuppr annotations", f.Name, name, d)
				}
				installers[name] = fmt.Sprintf("%s/%s", ann[tupprFactoryURL], ann[tupprSchematic])
			case "TalosUpgrade", "KubernetesUpgrade":
				schema := crds[d["apiVersion"].(string)+" "+kind]
				if schema == nil {
					t.Fatalf("%s: no CRD for %s %s", f.Name, d["apiVersion"], kind)
				}
				for _, e := range validate(schema, d, kind) {
					t.Errorf("%s: %s", f.Name, e)
				}
				if kind == "KubernetesUpgrade" {
					stage = "kubernetes " + dig(d, "spec", "kubernetes", "version").(string)
					continue
				}
				version := dig(d, "spec", "talos", "version").(string)
				var nodes []string
				for _, v := range dig(d, "spec", "nodeSelector", "matchExpressions").([]any)[0].(map[string]any)["values"].([]any) {
					nodes = append(nodes, v.(string))
					got := installers[v.(string)] + ":" + version
					want := images[version+" "+v.(string)]
					if got != want {
						t.Errorf("%s: node %s installs %q under tuppr; the plan's upgrade step uses %q", f.Name, v, got, want)
					}
					if !strings.Contains(script.String(), "--image "+want) {
						t.Errorf("%s: installer %s of %s is not the script's", f.Name, want, v)
					}
				}
				if len(installers) != len(nodes) {
					t.Errorf("%s: %d nodes annotated, %d selected; want every selected node annotated", f.Name, len(installers), len(nodes))
				}
				stage = fmt.Sprintf("%s %s %s", strings.TrimPrefix(name, "homelab-talos-"), version, strings.Join(nodes, ","))
			default:
				t.Errorf("%s: unexpected kind %q", f.Name, kind)
			}
		}
		order = append(order, stage)
	}
	var want []string
	for _, v := range []string{"v1.7.7", "v1.8.4", "v1.9.6", "v1.10.9"} {
		want = append(want, "controlplane "+v+" cp-1,cp-2,cp-3", "gpu "+v+" gpu-1", "workers "+v+" worker-1,worker-2,worker-3")
	}
	want = append(want, "kubernetes v1.31.4", "kubernetes v1.32.4", "kubernetes v1.33.6")
	if !slices.Equal(order, want) {
		t.Errorf("TupprFiles() stages =\n%s\nwant\n%s", strings.Join(order, "\n"), strings.Join(want, "\n"))
	}
	// Named in order, and the README says the order.
	readme := files[len(files)-1]
	if readme.Name != "README.md" {
		t.Fatalf("last file = %s; want README.md", readme.Name)
	}
	pos := 0
	for i, f := range files[:len(files)-1] {
		if !strings.HasPrefix(f.Name, fmt.Sprintf("%02d-", i+1)) {
			t.Errorf("file %d = %s; want it to start with %02d-", i, f.Name, i+1)
		}
		j := strings.Index(string(readme.Data[pos:]), "kubectl apply -f "+f.Name)
		if j < 0 {
			t.Errorf("README.md does not list %s in order", f.Name)
			continue
		}
		pos += j
	}
}

// TestTupprStdoutNextStage: -o tuppr to stdout prints one stage, naming the rest.
func TestTupprStdoutNextStage(t *testing.T) {
	t.Parallel()
	p := clusterPlan(t, Options{To: "v1.10.x", Parallel: 2})
	var buf bytes.Buffer
	if err := WriteTuppr(&buf, p); err != nil {
		t.Fatal(err)
	}
	files, err := TupprFiles(p)
	if err != nil {
		t.Fatal(err)
	}
	docs := decodeDocs(t, "stdout", buf.Bytes())
	upgrades := 0
	for _, d := range docs {
		if k := d["kind"]; k == "TalosUpgrade" || k == "KubernetesUpgrade" {
			upgrades++
			if v := dig(d, "spec", "talos", "version"); v != "v1.7.7" {
				t.Errorf("WriteTuppr() stage version = %v; want the first hop, v1.7.7", v)
			}
		}
	}
	if upgrades != 1 {
		t.Errorf("WriteTuppr() = %d upgrade resources; want 1 (the next stage only)", upgrades)
	}
	for _, f := range files[1 : len(files)-1] {
		if !strings.Contains(buf.String(), "#   "+f.Name) {
			t.Errorf("WriteTuppr() does not name the following stage %s", f.Name)
		}
	}
}

func TestTupprRefusesReimage(t *testing.T) {
	t.Parallel()
	p, err := planFor(t, "at-target.yaml", "", Options{To: "v1.10.x"})
	if err != nil {
		t.Fatal(err)
	}
	err = WriteTuppr(io.Discard, p)
	if !errors.Is(err, ErrTupprReimage) || !strings.Contains(err.Error(), "worker-1") || !strings.Contains(err.Error(), "-o script") {
		t.Errorf("WriteTuppr(re-image only) = %v; want ErrTupprReimage naming worker-1 and the way out", err)
	}
	if _, err := TupprFiles(p); !errors.Is(err, ErrTupprReimage) {
		t.Errorf("TupprFiles(re-image only) = %v; want ErrTupprReimage", err)
	}
}

// TestTupprKubernetesOrder: Kubernetes steps a hop needs come before its Talos
// stages, the steps to the target after them.
func TestTupprKubernetesOrder(t *testing.T) {
	t.Parallel()
	p, err := planFor(t, "k8s-old.yaml", "", Options{To: "v1.13.x", Kubernetes: "1.32"})
	if err != nil {
		t.Fatal(err)
	}
	files, err := TupprFiles(p)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Name)
	}
	want := []string{
		"01-hop1-talos-v1.11.6-controlplane.yaml", "02-hop1-talos-v1.11.6-workers.yaml",
		"03-hop2-kubernetes-1.30.5.yaml",
		"04-hop2-talos-v1.12.11-controlplane.yaml", "05-hop2-talos-v1.12.11-workers.yaml",
		"06-hop3-kubernetes-1.31.4.yaml",
		"07-hop3-talos-v1.13.9-controlplane.yaml", "08-hop3-talos-v1.13.9-workers.yaml",
		"09-hop3-kubernetes-1.32.4.yaml", "README.md",
	}
	if !slices.Equal(got, want) {
		t.Errorf("TupprFiles(k8s-old to v1.13.x, Kubernetes 1.32) =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
