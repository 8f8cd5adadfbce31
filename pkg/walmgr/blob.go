package walmgr

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
	"github.com/skytools-go/skytools/pkg/walmgr/repo"
)

// ErrCorrupt means a stored object does not match its own checksum or size, or is not
// an object walmgrd wrote. A restore_command must never hand such a file to PostgreSQL.
var ErrCorrupt = errors.New("corrupt")

// Every object walmgrd stores (WAL files, backup files) is a "blob": the payload,
// compressed or not, followed by a fixed 72-byte trailer:
//
//	0   8  magic "SKYBLOB1"
//	8   1  compression (0 none, 1 zstd)
//	9   7  zero
//	16  8  payload length (big endian)
//	24  8  original length
//	32  8  XXH64 of the original content
//	40 32  SHA-256 of the original content
//
// The trailer goes last so a blob can be streamed in one pass. Reading a blob verifies
// size and SHA-256. Deciding whether a re-offered WAL file is the one already archived
// needs only the trailer and one pass of XXH64 over the file (about ten times faster
// than SHA-256), with the size: an accidental match of both for different content has
// a probability of 2^-64.
const (
	trailerSize  = 72
	trailerMagic = "SKYBLOB1"
)

// Compression is how a blob's payload is encoded.
type Compression byte

// Compression methods.
const (
	CompressNone Compression = 0
	CompressZstd Compression = 1
)

func (c Compression) String() string {
	switch c {
	case CompressNone:
		return "none"
	case CompressZstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", byte(c))
}

// Trailer describes a blob.
type Trailer struct {
	Compression Compression
	PayloadSize int64
	Size        int64 // original content
	XXH64       uint64
	SHA256      [32]byte
}

// Checksum is the hex SHA-256 of the original content.
func (t Trailer) Checksum() string { return hex.EncodeToString(t.SHA256[:]) }

func (t Trailer) marshal() []byte {
	b := make([]byte, trailerSize)
	copy(b, trailerMagic)
	b[8] = byte(t.Compression)
	binary.BigEndian.PutUint64(b[16:], uint64(t.PayloadSize))
	binary.BigEndian.PutUint64(b[24:], uint64(t.Size))
	binary.BigEndian.PutUint64(b[32:], t.XXH64)
	copy(b[40:], t.SHA256[:])
	return b
}

// ParseTrailer decodes a blob trailer.
func ParseTrailer(b []byte) (Trailer, error) {
	var t Trailer
	if len(b) != trailerSize || string(b[:8]) != trailerMagic {
		return t, fmt.Errorf("no walmgrd trailer: %w", ErrCorrupt)
	}
	if !bytes.Equal(b[9:16], make([]byte, 7)) {
		return t, fmt.Errorf("trailer reserved bytes set: %w", ErrCorrupt)
	}
	t.Compression = Compression(b[8])
	if t.Compression != CompressNone && t.Compression != CompressZstd {
		return t, fmt.Errorf("unknown compression %d: %w", b[8], ErrCorrupt)
	}
	ps, size := binary.BigEndian.Uint64(b[16:]), binary.BigEndian.Uint64(b[24:])
	if ps > 1<<62 || size > 1<<62 {
		return t, fmt.Errorf("trailer sizes out of range: %w", ErrCorrupt)
	}
	t.PayloadSize, t.Size = int64(ps), int64(size)
	if t.Compression == CompressNone && t.PayloadSize != t.Size {
		return t, fmt.Errorf("uncompressed payload %d bytes for %d bytes of content: %w", ps, size, ErrCorrupt)
	}
	t.XXH64 = binary.BigEndian.Uint64(b[32:])
	copy(t.SHA256[:], b[40:])
	return t, nil
}

// codec compresses and decompresses blobs, reusing its zstd state across objects. It
// is not safe for concurrent use.
type codec struct {
	comp  Compression
	level zstd.EncoderLevel
	enc   *zstd.Encoder
	dec   *zstd.Decoder
}

func newCodec(comp Compression, level int) *codec {
	return &codec{comp: comp, level: zstdLevel(level)}
}

// zstdLevel maps the zstd command-line levels onto the four the Go encoder has.
func zstdLevel(level int) zstd.EncoderLevel {
	switch {
	case level <= 1:
		return zstd.SpeedFastest
	case level <= 4:
		return zstd.SpeedDefault
	case level <= 8:
		return zstd.SpeedBetterCompression
	}
	return zstd.SpeedBestCompression
}

func (c *codec) close() {
	if c.enc != nil {
		c.enc.Close()
	}
	if c.dec != nil {
		c.dec.Close()
	}
}

// countingWriter counts what passes through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (cw *countingWriter) Write(b []byte) (int, error) {
	n, err := cw.w.Write(b)
	cw.n += int64(n)
	return n, err
}

// encode streams r into w as a blob and returns its trailer. The caller commits w.
// The checksums are computed on another goroutine, chunk by chunk, while the payload
// is compressed: on two cores SHA-256 then costs no wall time.
func (c *codec) encode(w io.Writer, r io.Reader) (Trailer, error) {
	t := Trailer{Compression: c.comp}
	cw := &countingWriter{w: w}
	var dst io.Writer = cw
	if c.comp == CompressZstd {
		if c.enc == nil {
			enc, err := zstd.NewWriter(cw, zstd.WithEncoderLevel(c.level), zstd.WithEncoderCRC(false), zstd.WithEncoderConcurrency(1))
			if err != nil {
				return t, fmt.Errorf("zstd encoder: %w", err)
			}
			c.enc = enc
		} else {
			c.enc.Reset(cw)
		}
		dst = c.enc
	}
	h := newParallelHash()
	defer h.stop()
	for {
		buf := h.buffer()
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return t, werr
			}
			h.add(buf[:n])
			t.Size += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return t, err
		}
	}
	if c.comp == CompressZstd {
		if err := c.enc.Close(); err != nil {
			return t, err
		}
	}
	t.PayloadSize = cw.n
	t.XXH64, t.SHA256 = h.sums()
	if _, err := w.Write(t.marshal()); err != nil {
		return t, err
	}
	return t, nil
}

// parallelHash computes SHA-256 and XXH64 of a stream on its own goroutine. Buffers
// cycle between the reader and the hasher, so no chunk is reused before it is hashed.
type parallelHash struct {
	free, full chan []byte
	done       chan struct{}
	sha        hash.Hash
	xx         *xxhash.Digest
	stopped    bool
}

const hashChunk = 256 << 10

func newParallelHash() *parallelHash {
	p := &parallelHash{free: make(chan []byte, 4), full: make(chan []byte, 4), done: make(chan struct{}),
		sha: sha256.New(), xx: xxhash.New()}
	for i := 0; i < 4; i++ {
		p.free <- make([]byte, hashChunk)
	}
	go func() {
		defer close(p.done)
		for b := range p.full {
			p.sha.Write(b)
			p.xx.Write(b)
			p.free <- b[:cap(b)]
		}
	}()
	return p
}

func (p *parallelHash) buffer() []byte { return <-p.free }

func (p *parallelHash) add(b []byte) { p.full <- b }

// stop ends the hasher; safe to call more than once.
func (p *parallelHash) stop() {
	if !p.stopped {
		p.stopped = true
		close(p.full)
		<-p.done
	}
}

func (p *parallelHash) sums() (uint64, [32]byte) {
	p.stop()
	var sum [32]byte
	copy(sum[:], p.sha.Sum(nil))
	return p.xx.Sum64(), sum
}

// readTrailer reads and checks an object's trailer.
func readTrailer(o repo.Object) (Trailer, error) {
	if o.Size() < trailerSize {
		return Trailer{}, fmt.Errorf("%d bytes, shorter than a trailer: %w", o.Size(), ErrCorrupt)
	}
	b := make([]byte, trailerSize)
	if _, err := o.ReadAt(b, o.Size()-trailerSize); err != nil {
		return Trailer{}, fmt.Errorf("read trailer: %w", err)
	}
	t, err := ParseTrailer(b)
	if err != nil {
		return t, err
	}
	if t.PayloadSize != o.Size()-trailerSize {
		return t, fmt.Errorf("payload is %d bytes, trailer says %d: %w", o.Size()-trailerSize, t.PayloadSize, ErrCorrupt)
	}
	return t, nil
}

// decode writes the original content of o to w, verifying length and checksum. w has
// received possibly bad data when an error wraps ErrCorrupt: write to a temporary file
// and only keep it on success.
func (c *codec) decode(w io.Writer, o repo.Object) (Trailer, error) {
	t, err := readTrailer(o)
	if err != nil {
		return t, err
	}
	h := sha256.New()
	dst := &countingWriter{w: io.MultiWriter(destWriter{w}, h)}
	payload := io.NewSectionReader(o, 0, t.PayloadSize)
	switch t.Compression {
	case CompressZstd:
		if c.dec == nil {
			c.dec, err = zstd.NewReader(payload, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<30))
			if err != nil {
				return t, fmt.Errorf("zstd decoder: %w", err)
			}
		} else if err := c.dec.Reset(payload); err != nil {
			return t, fmt.Errorf("zstd decoder: %w", err)
		}
		if _, err := c.dec.WriteTo(dst); err != nil {
			var we *writeError
			if errors.As(err, &we) {
				return t, we.err
			}
			return t, fmt.Errorf("decompress: %v: %w", err, ErrCorrupt)
		}
	default:
		if _, err := io.Copy(dst, payload); err != nil {
			return t, err
		}
	}
	return t, checkSum(t, dst.n, h)
}

// writeError marks an error of the destination writer.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// destWriter wraps a destination so that its errors are recognisable after passing
// through the decompressor.
type destWriter struct{ w io.Writer }

func (d destWriter) Write(b []byte) (int, error) {
	n, err := d.w.Write(b)
	if err != nil {
		return n, &writeError{err}
	}
	return n, nil
}

func checkSum(t Trailer, n int64, h hash.Hash) error {
	if n != t.Size {
		return fmt.Errorf("content is %d bytes, trailer says %d: %w", n, t.Size, ErrCorrupt)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	if sum != t.SHA256 {
		return fmt.Errorf("SHA-256 %x, trailer says %x: %w", sum, t.SHA256, ErrCorrupt)
	}
	return nil
}

// fastHash computes the size and XXH64 of r.
func fastHash(r io.Reader) (int64, uint64, error) {
	x := xxhash.New()
	n, err := io.CopyBuffer(x, r, make([]byte, 1<<20))
	return n, x.Sum64(), err
}
