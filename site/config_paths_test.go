package site

import (
	"path/filepath"
	"testing"
)

func TestResolvePaths(t *testing.T) {
	t.Parallel()
	c := &Config{
		Proxmox: ProxmoxConfig{TokenFile: "secrets/token", CAFile: "/etc/pve/ca.pem"},
		Verify:  VerifyConfig{TrustedRoot: "trusted_root.json", Policies: []PolicyConfig{{Match: "x/**", Key: "keys/k.pub"}}},
	}
	c.ResolvePaths("/srv/site")
	for _, tt := range []struct{ got, want string }{
		{c.Proxmox.TokenFile, "/srv/site/secrets/token"},
		{c.Proxmox.CAFile, "/etc/pve/ca.pem"},
		{c.Verify.TrustedRoot, "/srv/site/trusted_root.json"},
		{c.Verify.FactoryKey, ""},
		{c.Verify.Policies[0].Key, filepath.Join("/srv/site", "keys/k.pub")},
	} {
		if tt.got != tt.want {
			t.Errorf("ResolvePaths: path = %q; want %q", tt.got, tt.want)
		}
	}
}
