package verify

import (
	"reflect"
	"testing"

	"github.com/imgpipe/imgpipe/site"
)

func TestImagesFromLock(t *testing.T) {
	t.Parallel()
	const (
		qga   = "ghcr.io/siderolabs/qemu-guest-agent:9.2.0"
		iscsi = "ghcr.io/siderolabs/iscsi-tools:v0.1.6"
		inst1 = "factory.talos.dev/nocloud-installer/aaa:v1.9.5"
		inst2 = "factory.talos.dev/nocloud-installer/bbb:v1.9.5"
	)
	lock := &site.Lock{
		Schema: site.LockSchema,
		Talos:  "v1.9.5",
		Profiles: []site.Profile{
			{Name: "worker", Installer: inst1, Extensions: []site.Extension{
				{Ref: qga, Digest: ""},
				{Ref: iscsi, Digest: "sha256:1111111111111111111111111111111111111111111111111111111111111111"},
			}},
			{Name: "controlplane", Installer: inst2, Extensions: []site.Extension{
				{Ref: qga, Digest: "sha256:2222222222222222222222222222222222222222222222222222222222222222"},
			}},
		},
		Catalog: "ghcr.io/siderolabs/extensions:v1.9.5",
		CoreImages: []site.Image{
			{Role: "installer", Ref: "ghcr.io/siderolabs/installer:v1.9.5"},
			{Role: "kubelet", Ref: "ghcr.io/siderolabs/kubelet:v1.32.3"},
			{Role: "apiserver", Ref: "registry.k8s.io/kube-apiserver:v1.32.3"},
			{Ref: "gcr.io/etcd-development/etcd:v3.5.18"},
		},
	}
	want := []Image{
		{Ref: qga, Digest: "sha256:2222222222222222222222222222222222222222222222222222222222222222", Role: RoleExtension, Profiles: []string{"controlplane", "worker"}},
		{Ref: iscsi, Digest: "sha256:1111111111111111111111111111111111111111111111111111111111111111", Role: RoleExtension, Profiles: []string{"worker"}},
		{Ref: inst1, Role: RoleFactoryInstaller, Profiles: []string{"worker"}},
		{Ref: inst2, Role: RoleFactoryInstaller, Profiles: []string{"controlplane"}},
		{Ref: "ghcr.io/siderolabs/extensions:v1.9.5", Role: RoleCatalog},
		{Ref: "ghcr.io/siderolabs/installer:v1.9.5", Role: "installer"},
		{Ref: "ghcr.io/siderolabs/kubelet:v1.32.3", Role: "kubelet"},
		{Ref: "registry.k8s.io/kube-apiserver:v1.32.3", Role: "apiserver"},
		{Ref: "gcr.io/etcd-development/etcd:v3.5.18", Role: "core"},
	}
	got, err := ImagesFromLock(lock)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ImagesFromLock() =\n%+v, %v\nwant\n%+v", got, err, want)
	}
	if empty, err := ImagesFromLock(&site.Lock{}); len(empty) != 0 || err != nil {
		t.Errorf("ImagesFromLock(empty) = %v; want none", empty)
	}
}
