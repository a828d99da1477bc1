package rawphone

import "io"

// Buffer sizes of the adapters: output is flushed every outBufferSize bytes
// (about 1,000 lines), input is read inBufferSize bytes at a time.
const (
	outBufferSize = 32 << 10
	inBufferSize  = 64 << 10
)

// Writer hashes the raw lines written to it and writes the uploaded lines
// to an io.Writer.
type Writer struct {
	h   *Hasher
	w   io.Writer
	out [outBufferSize]byte
}

// NewWriter returns a Writer that hashes with h into w.
func NewWriter(w io.Writer, h *Hasher) *Writer {
	return &Writer{h: h, w: w}
}

// Write hashes the complete lines of p and carries an unfinished last line
// over to the next Write. Every uploaded line is passed on before it returns.
func (w *Writer) Write(p []byte) (int, error) {
	for read := 0; read < len(p); {
		nDst, nSrc := w.h.Transform(w.out[:], p[read:], false)
		if _, err := w.w.Write(w.out[:nDst]); err != nil {
			return read, err
		}
		read += nSrc
	}
	return len(p), nil
}

// Close hashes a last line that has no newline. It does not close the
// underlying writer.
func (w *Writer) Close() error {
	nDst, _ := w.h.Transform(w.out[:], nil, true)
	_, err := w.w.Write(w.out[:nDst])
	return err
}

// Reader hashes the raw lines it reads from an io.Reader: reading it yields
// the uploaded lines.
type Reader struct {
	h   *Hasher
	r   io.Reader
	in  [inBufferSize]byte
	out [outBufferSize]byte

	inStart, inEnd   int
	outStart, outEnd int
	srcEOF           bool  // r has ended: what is left in in is the stream's end
	err              error // io.EOF once every line is out, or r's error
}

// NewReader returns a Reader that hashes what it reads from r with h.
func NewReader(r io.Reader, h *Hasher) *Reader {
	return &Reader{h: h, r: r}
}

// Read copies uploaded lines to p.
func (r *Reader) Read(p []byte) (int, error) {
	for r.outStart == r.outEnd {
		if r.err != nil {
			return 0, r.err
		}
		r.fill()
	}
	n := copy(p, r.out[r.outStart:r.outEnd])
	r.outStart += n
	return n, nil
}

// fill reads more raw lines when all read are hashed, and hashes them into
// out, which is empty.
func (r *Reader) fill() {
	if r.inStart == r.inEnd && !r.srcEOF {
		n, err := r.r.Read(r.in[:])
		r.inStart, r.inEnd = 0, n
		switch {
		case err == io.EOF:
			r.srcEOF = true
		case err != nil:
			r.err = err
			return
		}
	}
	nDst, nSrc := r.h.Transform(r.out[:], r.in[r.inStart:r.inEnd], r.srcEOF)
	r.inStart += nSrc
	r.outStart, r.outEnd = 0, nDst
	if r.srcEOF && r.inStart == r.inEnd && r.h.carried == 0 {
		clear(r.in[:]) // no raw number outlives the stream
		r.err = io.EOF
	}
}
