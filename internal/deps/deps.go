// Package deps pins the project's chosen dependencies in go.mod while the
// packages that use them are being written. Remove an import once real code uses it.
package deps

import (
	_ "github.com/Masterminds/semver/v3"
	_ "github.com/google/go-containerregistry/pkg/crane"
	_ "github.com/google/go-containerregistry/pkg/registry"
	_ "github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/luthermonson/go-proxmox"
	_ "github.com/siderolabs/image-factory/pkg/client"
	_ "github.com/siderolabs/image-factory/pkg/schematic"
	_ "github.com/siderolabs/talos/pkg/machinery/compatibility"
	_ "github.com/siderolabs/talos/pkg/machinery/config/configloader"
	_ "github.com/sigstore/cosign/v2/pkg/cosign"
	_ "github.com/sigstore/cosign/v2/pkg/oci/remote"
	_ "github.com/sigstore/sigstore-go/pkg/root"
	_ "github.com/spf13/cobra"
	_ "gopkg.in/yaml.v3"
)
