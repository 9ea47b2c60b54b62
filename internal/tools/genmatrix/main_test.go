package main

import (
	"bytes"
	"testing"

	"github.com/imgpipe/imgpipe/compat"
)

// TestMergeCatalogConflicts: a tag or digest the catalog and talos-data.yaml disagree on
// is an error, never a silent choice; agreeing facts merge.
func TestMergeCatalogConflicts(t *testing.T) {
	t.Parallel()
	d1, d2 := "sha256:"+string(bytes.Repeat([]byte("a"), 64)), "sha256:"+string(bytes.Repeat([]byte("b"), 64))
	cr := catalogRelease{Talos: "v1.9.0", Status: statusReleased}
	cr.Extensions = append(cr.Extensions, struct {
		Name   string `yaml:"name"`
		Ref    string `yaml:"ref"`
		Tier   string `yaml:"tier"`
		Digest string `yaml:"digest"`
	}{Name: "siderolabs/zfs", Ref: "ghcr.io/siderolabs/zfs:2.2.7-v1.9.0", Tier: "extra", Digest: d1})
	tests := []struct {
		name    string
		known   compat.ExtensionTag
		wantErr bool
		digest  string
	}{
		{"agree", compat.ExtensionTag{Tag: "2.2.7-v1.9.0", Digest: d1}, false, d1},
		{"talos-data has none", compat.ExtensionTag{Tag: "2.2.7-v1.9.0", Digest: compat.DigestUnknown}, false, d1},
		{"tag differs", compat.ExtensionTag{Tag: "2.2.6-v1.9.0", Digest: compat.DigestUnknown}, true, ""},
		{"digest differs", compat.ExtensionTag{Tag: "2.2.7-v1.9.0", Digest: d2}, true, ""},
	}
	for _, tt := range tests {
		got, err := catalogExtensions(cr, map[string]compat.ExtensionTag{"zfs": tt.known})
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: catalogExtensions = %v; want error %v", tt.name, err, tt.wantErr)
		}
		if !tt.wantErr && got["zfs"].Digest != tt.digest {
			t.Errorf("%s: digest = %s; want %s", tt.name, got["zfs"].Digest, tt.digest)
		}
	}
}
