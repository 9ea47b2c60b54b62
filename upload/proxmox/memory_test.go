package proxmox

import (
	"io"
	"runtime"
	"testing"
)

// TestUploadMemoryFlat checks that an upload streams: the bytes allocated while
// sending 128 MiB (client and in-process fake together) stay a small fraction of
// the file. Not parallel: it reads process-wide allocation counters.
func TestUploadMemoryFlat(t *testing.T) {
	e := newEnv(t)
	const size = 128 << 20
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	upid, err := e.c.Upload(t.Context(), UploadRequest{Node: "pve1", Storage: "local", Content: "iso",
		Filename: isoName(t, "v1.9.5"), Body: io.LimitReader(zeroReader{}, size), Size: size})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if _, err := e.c.Wait(t.Context(), upid); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	got := after.TotalAlloc - before.TotalAlloc
	t.Logf("uploading %d MiB allocated %.1f MiB in total", size>>20, float64(got)/(1<<20))
	if got > size/4 { // the race detector adds ~18 MiB; buffering would add 128
		t.Errorf("Upload of %d MiB allocated %d MiB; want < %d MiB (streaming)", size>>20, got>>20, size/4>>20)
	}
	if v := e.srv.Volumes(); len(v) != 1 || v[0].Size != size {
		t.Errorf("volumes %+v; want one of %d bytes", v, size)
	}
}
