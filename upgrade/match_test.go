package upgrade

import (
	"strings"
	"testing"
)

func TestSchematicMatcher(t *testing.T) {
	t.Parallel()
	m := testMatrix(t)
	cfg := testSite(t)
	resolve := SiteResolver(m, cfg, "embedded")
	roles := map[string]string{}
	for _, p := range cfg.Profiles {
		roles[p.Name] = p.Role
	}
	id := func(talos, profile string) string {
		lock, err := resolve(talos, "", []string{profile})
		if err != nil {
			t.Fatal(err)
		}
		p, _ := lock.Profile(profile)
		return p.Schematic.ID
	}
	sm := NewSchematicMatcher(resolve, profileNames(cfg), roles)
	tests := []struct {
		talos, schematic, role string
		want, why              string
	}{
		{"v1.9.6", id("v1.9.6", "gpu"), RoleWorker, "gpu", ""},
		// controlplane and worker share a schematic at v1.9 (nfs-utils is optional): the role decides.
		{"v1.9.6", id("v1.9.6", "controlplane"), RoleControlPlane, "controlplane", ""},
		{"v1.9.6", id("v1.9.6", "worker"), RoleWorker, "worker", ""},
		// The gpu profile's v1.7.7 schematic (pre-v1.8 NVIDIA names) is not its v1.9.6
		// one: matched per release.
		{"v1.9.6", id("v1.7.7", "gpu"), RoleWorker, "", "matches no site profile at v1.9.6"},
		{"v1.7.7", id("v1.7.7", "gpu"), RoleWorker, "gpu", ""},
	}
	for _, tt := range tests {
		got, why := sm.Match(tt.talos, tt.schematic, tt.role)
		if got != tt.want || !strings.Contains(why, tt.why) {
			t.Errorf("Match(%s, %.12s, %s) = %q, %q; want %q, %q", tt.talos, tt.schematic, tt.role, got, why, tt.want, tt.why)
		}
	}
}
