package cluster

import (
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzKubeconfig feeds arbitrary kubeconfigs to the resolver: it must return a
// config or an error, never panic, and never accept a non-https server.
func FuzzKubeconfig(f *testing.F) {
	for _, name := range []string{"kubeconfig-token.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: 'https://a:b@x'}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var kf kubeconfigFile
		if yaml.Unmarshal(data, &kf) != nil {
			return
		}
		cfg, err := kf.resolve(t.TempDir(), "")
		if err == nil && (len(cfg.Server) < 8 || cfg.Server[:8] != "https://") {
			t.Errorf("resolve() accepted server %q", cfg.Server)
		}
	})
}
