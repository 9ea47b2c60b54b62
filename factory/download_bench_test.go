package factory_test

import (
	"testing"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/factory/factorytest"
)

// BenchmarkFetch measures a fresh download+hash (sha256 and sha512) of a 64 MiB
// artifact from the fake factory on loopback, written to a temp dir. bytes/op and
// allocs/op show that memory does not grow with the artifact. The 1 GiB comparison
// with curl|sha256sum is bench/factory/run.sh.
func BenchmarkFetch(b *testing.B) {
	const size = 64 << 20
	f := factorytest.New(b, factorytest.Options{Catalog: factorytest.ReferenceCatalog(), ImageSize: size})
	id, err := f.AddSchematic(qemuYAML)
	if err != nil {
		b.Fatal(err)
	}
	c, err := factory.New(f.URL())
	if err != nil {
		b.Fatal(err)
	}
	url := f.URL() + "/image/" + id + "/v1.9.5/metal-amd64.iso"
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Fetch(b.Context(), factory.Cache{Dir: b.TempDir()}, url, factory.FetchOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
