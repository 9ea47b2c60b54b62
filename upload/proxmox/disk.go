package proxmox

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

// PVE's import content takes .qcow2, .raw, .vmdk or .ova, uncompressed; download-url
// decompresses only for iso content. The factory's nocloud image is .raw.zst (or
// .raw.xz before Talos 1.8), so:
//   - a .qcow2 or .raw artifact goes as is: by download-url when the lock has its
//     checksum, else uploaded;
//   - a .raw.zst or .raw.gz artifact is decompressed on the runner while it streams.
//     PVE needs Content-Length and a checksum up front, so a first pass decompresses
//     to nowhere to learn the raw size and SHA-256 (and checks the compressed file
//     against the lock); the second pass streams. Memory stays flat; the cost is one
//     extra decompression (about a second per GiB);
//   - .raw.xz is refused with the fix: fetch the .raw.zst or .qcow2 instead.

// ImportArtifact turns the lock's disk artifact into an import volume for PVE.
// method is the configured transfer method; it falls back to upload when PVE could
// not take the file by download-url. The returned method is the one to use.
func ImportArtifact(ctx context.Context, siteName string, lock *site.Lock, p *site.Profile, method string) (Artifact, string, error) {
	d, ok := artifact(p, "disk")
	if !ok {
		return Artifact{}, "", fail.Usage(fmt.Errorf("profile %s: the lock has no downloaded disk image: run `imgpipe fetch` first", p.Name))
	}
	ext, comp, err := importFormat(p, d)
	if err != nil {
		return Artifact{}, "", err
	}
	name, err := VolumeName(siteName, lock, p, ext)
	if err != nil {
		return Artifact{}, "", err
	}
	a := Artifact{Content: "import", Filename: name, URL: d.URL}
	if comp == "" {
		a.Size, a.Checksum, a.Algorithm = d.Size, checksumHex(d.SHA256), "sha256"
		if d.SHA512 != "" {
			a.Checksum, a.Algorithm = checksumHex(d.SHA512), "sha512"
		}
		if method == MethodDownloadURL && a.Checksum != "" && d.URL != "" {
			return a, MethodDownloadURL, nil
		}
		if d.File == "" || a.Checksum == "" {
			return Artifact{}, "", fail.Usage(fmt.Errorf("profile %s: the lock has no local file and checksum for the disk image: run `imgpipe fetch` first", p.Name))
		}
		file := d.File
		a.Open = func() (io.ReadCloser, error) { return openSized(file, d.Size) }
		return a, MethodUpload, nil
	}
	if d.File == "" {
		return Artifact{}, "", fail.Usage(fmt.Errorf("profile %s: the compressed disk image must be uploaded from the runner, but the lock has no local file: run `imgpipe fetch` first", p.Name))
	}
	size, sum, err := measureDecompressed(ctx, d.File, comp, d.SHA256)
	if err != nil {
		return Artifact{}, "", fmt.Errorf("profile %s: %w", p.Name, err)
	}
	file := d.File
	a.Size, a.Checksum, a.Algorithm = size, sum, "sha256"
	a.Open = func() (io.ReadCloser, error) { return openDecompressed(file, comp) }
	return a, MethodUpload, nil
}

// ImportExt is the format (raw or qcow2) of a profile's import volume on PVE, as
// ImportArtifact will name it, read from the lock alone (no file is opened).
func ImportExt(p *site.Profile) (string, error) {
	d, _ := artifact(p, "disk")
	ext, _, err := importFormat(p, d)
	return ext, err
}

// importFormat reads the disk image's format and compression from its URL (the
// fetch cache names files by digest, so the file name says nothing).
func importFormat(p *site.Profile, d site.Artifact) (ext, comp string, err error) {
	src := d.URL
	if src == "" {
		src = p.DiskImage
	}
	if src == "" {
		src = d.File
	}
	switch {
	case strings.HasSuffix(src, ".qcow2"):
		return "qcow2", "", nil
	case strings.HasSuffix(src, ".raw"):
		return "raw", "", nil
	case strings.HasSuffix(src, ".raw.zst"):
		return "raw", "zst", nil
	case strings.HasSuffix(src, ".raw.gz"):
		return "raw", "gz", nil
	case strings.HasSuffix(src, ".raw.xz"):
		return "", "", fail.Usage(fmt.Errorf("profile %s: disk image %s is xz-compressed: PVE cannot import or decompress xz; fetch the nocloud image as .raw.zst or .qcow2", p.Name, src))
	}
	return "", "", fail.Usage(fmt.Errorf("profile %s: disk image %s: PVE imports .qcow2 or .raw (imgpipe also decompresses .raw.zst and .raw.gz)", p.Name, src))
}

func artifact(p *site.Profile, kind string) (site.Artifact, bool) {
	for _, a := range p.Artifacts {
		if a.Kind == kind {
			return a, true
		}
	}
	return site.Artifact{}, false
}

// openSized opens a cached artifact and checks it still has the lock's size.
func openSized(path string, size int64) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if size > 0 && st.Size() != size {
		f.Close()
		return nil, fmt.Errorf("%s is %d bytes, the lock says %d: re-run `imgpipe fetch`", path, st.Size(), size)
	}
	return f, nil
}

type decompressed struct {
	io.Reader
	closers []func()
}

func (d *decompressed) Close() error {
	for _, c := range d.closers {
		c()
	}
	return nil
}

func openDecompressed(path, comp string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return wrapDecompress(f, comp, func() { f.Close() })
}

func wrapDecompress(r io.Reader, comp string, closeFile func()) (io.ReadCloser, error) {
	switch comp {
	case "zst":
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			closeFile()
			return nil, fmt.Errorf("opening zstd stream: %w", err)
		}
		return &decompressed{Reader: zr, closers: []func(){zr.Close, closeFile}}, nil
	case "gz":
		zr, err := gzip.NewReader(r)
		if err != nil {
			closeFile()
			return nil, fmt.Errorf("opening gzip stream: %w", err)
		}
		return &decompressed{Reader: zr, closers: []func(){func() { zr.Close() }, closeFile}}, nil
	}
	closeFile()
	return nil, fmt.Errorf("unknown compression %q", comp)
}

// measureDecompressed checks the compressed file against the lock's SHA-256 and
// returns the decompressed size and SHA-256.
func measureDecompressed(ctx context.Context, path, comp, wantSHA256 string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", fmt.Errorf("reading disk image: %w", err)
	}
	defer f.Close()
	outer := sha256.New()
	rc, err := wrapDecompress(io.TeeReader(f, outer), comp, func() {})
	if err != nil {
		return 0, "", fmt.Errorf("reading %s: %w", path, err)
	}
	defer rc.Close()
	inner := sha256.New()
	var n int64
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return 0, "", fmt.Errorf("decompressing %s: %w", path, err)
		}
		m, err := rc.Read(buf)
		inner.Write(buf[:m])
		n += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, "", fmt.Errorf("decompressing %s: %w", path, err)
		}
	}
	if _, err := io.Copy(outer, f); err != nil { // trailing bytes after the last frame
		return 0, "", fmt.Errorf("reading %s: %w", path, err)
	}
	if wantSHA256 != "" && !strings.EqualFold(hex.EncodeToString(outer.Sum(nil)), checksumHex(wantSHA256)) {
		return 0, "", fmt.Errorf("%s does not match the lock's sha256: %w; re-run `imgpipe fetch`", path, ErrChecksumMismatch)
	}
	return n, hex.EncodeToString(inner.Sum(nil)), nil
}
