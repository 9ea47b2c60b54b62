package main

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/imgpipe/imgpipe/pipeline"
	"github.com/imgpipe/imgpipe/pipeline/tfexport"
	"github.com/imgpipe/imgpipe/upload/proxmox"
)

// exportExample runs resolve and export terraform on testdata/imgpipe.yaml with a
// build report in which the controlplane template was created, and returns the
// output directory.
func exportExample(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join("..", "..", "testdata", "imgpipe.yaml")
	lock := filepath.Join(dir, "imgpipe.lock.json")
	if _, stderr, code := runImgpipe(t, nil, "resolve", "-c", cfg, "--talos", "v1.12.x", "--lock", lock); code != 0 {
		t.Fatalf("resolve: exit %d: %s", code, stderr)
	}
	sum, err := json.Marshal(pipeline.UploadSummary{Templates: []proxmox.Result{
		{Kind: "template", Profile: "controlplane", Node: "pve1", VMID: 9000, Name: "talos-v1.12.11-controlplane", Action: "created"},
		// Stale: a template of another release must not lend its VMID.
		{Kind: "template", Profile: "worker", Node: "pve1", VMID: 9100, Name: "talos-v1.12.10-worker", Action: "skipped"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := json.Marshal(pipeline.Report{Schema: pipeline.ReportSchema, Talos: "v1.12.11",
		Stages: []pipeline.StageRecord{{Name: pipeline.StageUpload, Status: pipeline.StatusDone, Summary: sum}}})
	if err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "build.json")
	if err := os.WriteFile(report, rep, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "stack")
	stdout, stderr, code := runImgpipe(t, nil, "export", "terraform", "-c", cfg, "--lock", lock, "--report", report, "--out-dir", out)
	if code != 0 {
		t.Fatalf("export terraform: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, tfexport.FileName) || !strings.Contains(stdout, "controlplane.patch.yaml") {
		t.Errorf("export terraform: stdout %q; want the written files", stdout)
	}
	return out
}

func TestExportTerraformGolden(t *testing.T) {
	t.Parallel()
	out := exportExample(t)
	data, err := os.ReadFile(filepath.Join(out, tfexport.FileName))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "export-terraform.auto.tfvars.json", string(data))
	var v tfexport.Vars
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	for name, p := range v.Profiles {
		for _, patch := range p.MachineConfigPatches {
			b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(patch)))
			if err != nil || !strings.Contains(string(b), "image: "+p.Installer) {
				t.Errorf("profile %s: patch %s: %v; want a file pinning %s", name, patch, err, p.Installer)
			}
		}
	}
}

// tfStack is the example stack parsed: its variable declarations and every
// expression that reads a variable.
type tfStack struct {
	types    map[string]cty.Type
	defaults map[string]bool
	reads    []hcl.Traversal
	// attrs are attribute names read on var.imgpipe_profiles[<key>].
	profileAttrs map[string]hcl.Range
}

func parseStack(t *testing.T, dir string) *tfStack {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no .tf files in %s: %v", dir, err)
	}
	s := &tfStack{types: map[string]cty.Type{}, defaults: map[string]bool{}, profileAttrs: map[string]hcl.Range{}}
	p := hclparse.NewParser()
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			t.Fatalf("parsing %s: %v", f, diags)
		}
		body := file.Body.(*hclsyntax.Body)
		for _, b := range body.Blocks {
			if b.Type == "variable" {
				s.addVariable(t, b)
			}
		}
		hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
			s.visit(n)
			return nil
		})
	}
	return s
}

func (s *tfStack) addVariable(t *testing.T, b *hclsyntax.Block) {
	t.Helper()
	name := b.Labels[0]
	attr, ok := b.Body.Attributes["type"]
	if !ok {
		t.Fatalf("variable %s has no type", name)
	}
	ty, _, diags := typeexpr.TypeConstraintWithDefaults(attr.Expr)
	if diags.HasErrors() {
		t.Fatalf("variable %s: type: %v", name, diags)
	}
	s.types[name] = ty
	_, s.defaults[name] = b.Body.Attributes["default"]
}

func (s *tfStack) visit(n hclsyntax.Node) {
	switch e := n.(type) {
	case *hclsyntax.ScopeTraversalExpr:
		if e.Traversal.RootName() == "var" {
			s.reads = append(s.reads, e.Traversal)
		}
	case *hclsyntax.RelativeTraversalExpr:
		// var.imgpipe_profiles[<key>].<attr>...
		idx, ok := e.Source.(*hclsyntax.IndexExpr)
		if !ok {
			return
		}
		coll, ok := idx.Collection.(*hclsyntax.ScopeTraversalExpr)
		if !ok || len(coll.Traversal) != 2 || coll.Traversal.RootName() != "var" {
			return
		}
		if a, ok := coll.Traversal[1].(hcl.TraverseAttr); ok && a.Name == "imgpipe_profiles" && len(e.Traversal) > 0 {
			if step, ok := e.Traversal[0].(hcl.TraverseAttr); ok {
				s.profileAttrs[step.Name] = step.SrcRange
			}
		}
	}
}

// TestTerraformStackReadsExport: every variable the example stack reads is declared;
// every imgpipe_* variable is in the exported JSON and the JSON value has the
// declared type (what terraform plan would check); every attribute the stack reads
// on a profile exists in that type; the stack's own inputs are in the tfvars example.
func TestTerraformStackReadsExport(t *testing.T) {
	t.Parallel()
	stackDir := filepath.Join("..", "..", "examples", "terraform", "stacks", "talos")
	s := parseStack(t, stackDir)
	data, err := os.ReadFile(filepath.Join(exportExample(t), tfexport.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var exported map[string]json.RawMessage
	if err := json.Unmarshal(data, &exported); err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(stackDir, "terraform.tfvars.example"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range s.reads {
		name := tr[1].(hcl.TraverseAttr).Name
		if _, ok := s.types[name]; !ok {
			t.Errorf("%s: the stack reads var.%s, which no variable block declares", tr.SourceRange(), name)
		}
	}
	for name, ty := range s.types {
		raw, inExport := exported[name]
		switch {
		case strings.HasPrefix(name, "imgpipe_") && !inExport:
			t.Errorf("variable %s is not in %s", name, tfexport.FileName)
		case inExport:
			val, err := ctyjson.Unmarshal(raw, mustImplied(t, raw))
			if err == nil {
				_, err = convert.Convert(val, ty)
			}
			if err != nil {
				t.Errorf("%s in %s does not fit type %s: %v", name, tfexport.FileName, typeexpr.TypeString(ty), err)
			}
		case !s.defaults[name] && !strings.Contains(string(example), name+" "):
			t.Errorf("variable %s has no default and is not in terraform.tfvars.example", name)
		}
	}
	for name := range exported {
		if _, ok := s.types[name]; !ok {
			t.Errorf("%s holds %s, which the stack does not declare (terraform warns)", tfexport.FileName, name)
		}
	}
	prof := s.types["imgpipe_profiles"].ElementType()
	if len(s.profileAttrs) == 0 {
		t.Error("found no var.imgpipe_profiles[...].<attr> reads: the walker is broken")
	}
	for attr, rng := range s.profileAttrs {
		if !prof.HasAttribute(attr) {
			t.Errorf("%s: the stack reads .%s on a profile, which imgpipe_profiles' type lacks", rng, attr)
		}
	}
	want := []string{"installer", "iso_volume_ids", "machine_config_patches", "role", "templates", "talos_version"}
	for _, w := range want {
		if _, ok := s.profileAttrs[w]; !ok {
			t.Errorf("the stack does not read .%s of a profile; want it used", w)
		}
	}
	if got := slices.Sorted(maps.Keys(s.profileAttrs)); len(got) < len(want) {
		t.Errorf("profile attributes read: %v", got)
	}
}

func mustImplied(t *testing.T, raw []byte) cty.Type {
	t.Helper()
	ty, err := ctyjson.ImpliedType(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ty
}
