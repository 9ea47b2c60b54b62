package verifybench

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/imgpipe/imgpipe/pipeline/verify"
	"github.com/imgpipe/imgpipe/pipeline/verify/verifytest"
)

// TestCosignCLIInterop signs with the real cosign CLI (legacy .sig and
// --new-bundle-format, key mode, no tlog) and checks imgpipe verifies both. It needs a
// cosign v2 binary in $COSIGN and is skipped otherwise (CI has none).
func TestCosignCLIInterop(t *testing.T) {
	cosignBin := os.Getenv("COSIGN")
	if cosignBin == "" {
		t.Skip("set COSIGN=/path/to/cosign to run")
	}
	t.Parallel()
	dir := t.TempDir()
	host := verifytest.Registry(t)
	env := append(os.Environ(), "COSIGN_PASSWORD=interop", "HOME="+dir)
	cosign := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), cosignBin, args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cosign %v: %v\n%s", args, err, out)
		}
	}
	cosign("generate-key-pair", "--output-key-prefix", "interop")
	legacy := verifytest.PushRandom(t, host+"/interop/legacy:v1")
	bundled := verifytest.PushRandom(t, host+"/interop/bundled:v1")
	cosign("sign", "--key", "interop.key", "--tlog-upload=false", "--yes", legacy.String())
	cosign("sign", "--key", "interop.key", "--tlog-upload=false", "--new-bundle-format", "--yes", bundled.String())

	pemKey, err := os.ReadFile(filepath.Join(dir, "interop.pub"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := verify.ParsePublicKey("interop.pub", pemKey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New([]verify.Policy{{Name: "interop", Match: []string{"*/interop/**"}, Keys: []verify.Key{key}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref    string
		format string
	}{{legacy.String(), verify.FormatSigTag}, {bundled.String(), verify.FormatBundle}} {
		got := v.VerifyImage(t.Context(), verify.Image{Ref: tc.ref})
		if got.Verdict != verify.Verified || got.Format != tc.format {
			t.Errorf("VerifyImage(%q) = %s/%s (%s); want %s/%s", tc.ref, got.Verdict, got.Format, got.Reason, verify.Verified, tc.format)
		}
	}
}
