package proxmox

import (
	"go/build"
	"strings"
	"testing"
)

func FuzzParseToken(f *testing.F) {
	for _, s := range []string{"PVEAPIToken=imgpipe@pve!ci=5f0c1a52-7a4e", "root@pam!build=abc", "a@b!c=d=e", "=", "PVEAPIToken=", "u@r!t= x"} {
		f.Add(s)
	}
	// Errors must not depend on the input (it holds the secret): they are fixed texts.
	fixed := map[string]bool{}
	for _, s := range []string{"no-equals", "bad id=x", "u@r!t="} {
		_, err := ParseToken(s)
		fixed[err.Error()] = true
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			if !fixed[err.Error()] {
				t.Errorf("ParseToken(%q) error %q is not one of the fixed messages", s, err)
			}
			return
		}
		if tok.IsZero() || tok.String() != tok.id+"=<redacted>" {
			t.Errorf("ParseToken(%q) = %q; want an id and a redacted String", s, tok.String())
		}
		again, err := ParseToken(tok.id + "=" + tok.secret)
		if err != nil || again != tok {
			t.Errorf("ParseToken(round trip of %q) = %v, %v; want %v", s, again, err, tok)
		}
	})
}

func FuzzParseUPID(f *testing.F) {
	for _, s := range []string{
		"UPID:pve1:0001A2B4:000B72EC:6B04E43F:imgcopy::imgpipe@pve!ci:",
		`UPID:pve1:0001A2B5:000B72F3:6B04E43F:imgdel:local\x3aiso/t.iso:root@pam:`,
		"UPID:pve1:1:2:3:x:y:z:", "UPID::::::::", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUPID(s)
		if err != nil {
			return
		}
		if u.Raw != s || u.Node == "" || u.User == "" || !strings.HasPrefix(s, "UPID:"+u.Node+":") || !strings.HasSuffix(s, ":"+u.User+":") {
			t.Errorf("ParseUPID(%q) = %+v; fields do not match the input", s, u)
		}
	})
}

// TestImportDirection keeps upload/proxmox below the pipeline: it may use site and
// internal packages, never the CLI, the pipeline, other stages or cosign.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{".", "pvetest"} {
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("reading package %s: %v", dir, err)
		}
		for _, imp := range append(pkg.Imports, pkg.TestImports...) {
			for _, bad := range []string{"/cmd/", "/pipeline", "/factory", "/upload/registry", "sigstore/cosign"} {
				if strings.Contains(imp, bad) {
					t.Errorf("package %s imports %s; upload/proxmox must not depend on %s", dir, imp, bad)
				}
			}
			if dir == "pvetest" && strings.HasPrefix(imp, "github.com/imgpipe/imgpipe/") {
				t.Errorf("pvetest imports %s; the fake must stand alone", imp)
			}
		}
	}
}
