package factory

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"hash"
	"io"
	"sync"
)

// chunkSize and chunks bound the downloader's memory: chunks*chunkSize bytes in flight.
const (
	chunkSize = 1 << 20
	chunks    = 4
)

// Digests are the checksums imgpipe records for an artifact.
type Digests struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	SHA512 string `json:"sha512"`
}

// digester computes sha256 and sha512 over a stream. sha512 is the slower of the
// two, so it runs on its own goroutine while the caller writes the file and
// feeds sha256; buffers cycle through a fixed pool, keeping memory flat.
type digester struct {
	s256 hash.Hash
	s512 hash.Hash
	size int64
	free chan []byte
	work chan []byte
	wg   sync.WaitGroup // pending chunks
	done chan struct{}
}

func newDigester() *digester {
	d := &digester{
		s256: sha256.New(), s512: sha512.New(),
		free: make(chan []byte, chunks), work: make(chan []byte, chunks),
		done: make(chan struct{}),
	}
	for range chunks {
		d.free <- make([]byte, chunkSize)
	}
	go func() {
		defer close(d.done)
		for b := range d.work {
			d.s512.Write(b)
			d.free <- b[:cap(b)]
			d.wg.Done()
		}
	}()
	return d
}

// buffer returns an empty chunk buffer; give it back through add.
func (d *digester) buffer() []byte { return <-d.free }

// add hashes b (a slice of a buffer from buffer) and recycles the buffer afterwards.
func (d *digester) add(b []byte) {
	d.s256.Write(b)
	d.size += int64(len(b))
	d.wg.Add(1)
	d.work <- b
}

// release returns an unused buffer.
func (d *digester) release(b []byte) { d.free <- b[:cap(b)] }

// sum waits for pending chunks and returns the digests so far.
func (d *digester) sum() Digests {
	d.wg.Wait()
	return Digests{
		Size:   d.size,
		SHA256: "sha256:" + hex.EncodeToString(d.s256.Sum(nil)),
		SHA512: "sha512:" + hex.EncodeToString(d.s512.Sum(nil)),
	}
}

// close stops the worker; the digester is unusable afterwards.
func (d *digester) close() {
	d.wg.Wait()
	close(d.work)
	<-d.done
}

// digestReader hashes everything r yields, writing it to w as well when w is not nil.
func digestReader(d *digester, r io.Reader, w io.Writer, onChunk func(n int)) error {
	for {
		buf := d.buffer()
		n, err := fill(r, buf)
		if n > 0 {
			if w != nil {
				if _, werr := w.Write(buf[:n]); werr != nil {
					d.release(buf)
					return werr
				}
			}
			d.add(buf[:n])
			if onChunk != nil {
				onChunk(n)
			}
		} else {
			d.release(buf)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// fill reads until buf is full, EOF or an error; unlike io.ReadFull it keeps a
// clean EOF distinct from a truncated stream (io.ErrUnexpectedEOF from the body).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
