package check

import (
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/site"
)

func TestCompareNode(t *testing.T) {
	t.Parallel()
	cp := strings.Repeat("c", 64)
	wk := strings.Repeat("w", 64)
	lock := &site.Lock{Talos: "v1.12.2", Profiles: []site.Profile{
		{Name: "controlplane", Schematic: site.Schematic{ID: cp}, Installer: "f/nocloud-installer/" + cp + ":v1.12.2"},
		{Name: "worker", Schematic: site.Schematic{ID: wk}, Installer: "f/nocloud-installer/" + wk + ":v1.12.2"},
	}}
	tests := []struct {
		name    string
		node    Node
		status  Status
		profile string
		fix     bool
		detail  string
	}{
		{"at the lock", Node{Name: "n", Address: "10.0.0.1", Talos: "v1.12.2", Schematic: wk}, OK, "worker", false, ""},
		{"behind", Node{Name: "n", Address: "10.0.0.1", Talos: "v1.11.5", Schematic: wk}, Different, "worker", true, "behind"},
		{"ahead", Node{Name: "n", Talos: "v1.13.0", Schematic: cp}, Different, "controlplane", true, "ahead"},
		{"label wins over schematic", Node{Name: "n", Talos: "v1.12.2", Schematic: wk, Profile: "controlplane"}, Different, "controlplane", true, "schematic"},
		{"unknown schematic, label", Node{Name: "n", Talos: "v1.12.2", Profile: "worker"}, Unchecked, "worker", false, "schematic is unknown"},
		{"unknown schematic but behind", Node{Name: "n", Talos: "v1.11.0", Profile: "worker"}, Different, "worker", true, "behind"},
		{"no profile", Node{Name: "n", Talos: "v1.12.2", Schematic: strings.Repeat("0", 64)}, Stray, "", false, "no profile"},
		{"label names no lock profile", Node{Name: "n", Talos: "v1.12.2", Profile: "gpu"}, Stray, "", false, "gpu"},
		{"unreadable", Node{Name: "n", Talos: "v1.12.2", Schematic: wk, Unreadable: "Talos API: unavailable"}, Unchecked, "worker", false, "unavailable"},
		{"version unknown", Node{Name: "n", Schematic: wk}, Unchecked, "worker", false, "version is unknown"},
	}
	for _, tt := range tests {
		it := compareNode(lock, tt.node)
		if it.Status != tt.status || it.Profile != tt.profile || (it.Fix != "") != tt.fix || !strings.Contains(it.Detail, tt.detail) {
			t.Errorf("compareNode(%s) = %s, profile %q, fix %q, detail %q; want %s, %q, fix %v, detail with %q",
				tt.name, it.Status, it.Profile, it.Fix, it.Detail, tt.status, tt.profile, tt.fix, tt.detail)
		}
		if tt.fix && !strings.Contains(it.Fix, "upgrade --image f/nocloud-installer/") {
			t.Errorf("compareNode(%s) fix = %q; want talosctl upgrade with the profile's installer", tt.name, it.Fix)
		}
	}
}
