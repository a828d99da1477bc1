package wechatpay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"net/url"
	"strconv"
)

// Part is one part of an upload, streamed from Open.
type Part struct {
	UploadID string
	Number   int    // 1-based
	Filename string // the upload's filename
	Size     int64  // exactly the plan's part size; only the last part may be smaller
	Digest   string // sha256 of this part, 64 lowercase hex
	// Open returns a fresh reader positioned at the part's first byte. It is
	// called once per attempt (a failover to the backup host opens it again),
	// and the reader must yield exactly Size bytes. Its errors are returned
	// wrapped, unclassified: the caller knows its own source.
	Open func() (io.ReadCloser, error)
}

// PartResult is the verified answer to an upload; its fields are not documented.
type PartResult struct {
	Raw map[string]any
}

// PartBounds returns where part n (1-based) of a file starts and how long it
// is under a plan of partSize bytes per part.
func PartBounds(fileSize, partSize int64, n int) (offset, size int64) {
	offset = int64(n-1) * partSize
	return offset, max(0, min(partSize, fileSize-offset))
}

// UploadPart sends one part as multipart/form-data: a field file_meta holding
// the compact JSON {"filename":…,"digest":…} (which is what gets signed) and
// a file part named file. The bytes are streamed, never buffered whole.
func (cl *Client) UploadPart(ctx context.Context, p Part) (*PartResult, error) {
	op := fmt.Sprintf("upload part %d", p.Number)
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	meta, err := json.Marshal(struct {
		Filename string `json:"filename"`
		Digest   string `json:"digest"`
	}{p.Filename, p.Digest})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	env, err := newEnvelope(meta, p.Filename)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	fields, err := cl.doObject(ctx, call{
		op:          op,
		method:      "PUT",
		path:        uploadsPath + "/" + url.PathEscape(p.UploadID) + "/" + strconv.Itoa(p.Number),
		signedBody:  meta,
		contentType: env.contentType,
		body: func() (io.ReadCloser, int64, error) {
			part, err := p.Open()
			if err != nil {
				return nil, 0, fmt.Errorf("open part: %w", err)
			}
			return env.wrap(part, p.Size), env.size(p.Size), nil
		},
	})
	if err != nil {
		return nil, err
	}
	return &PartResult{Raw: fields}, nil
}

func (p Part) validate() error {
	if err := validateUploadID(p.UploadID); err != nil {
		return err
	}
	if p.Number < 1 {
		return &ValidationError{Field: "part_number", Reason: "must be 1 or more"}
	}
	if err := validateFilename(p.Filename); err != nil {
		return err
	}
	if p.Size <= 0 || p.Size > MaxPartSize {
		return &ValidationError{Field: "part size", Reason: fmt.Sprintf("must be 1 to %d bytes", MaxPartSize)}
	}
	if err := validateDigest("part digest", p.Digest); err != nil {
		return err
	}
	if p.Open == nil {
		return &ValidationError{Field: "part", Reason: "no Open function"}
	}
	return nil
}

// envelope is the multipart framing around a part's bytes, computed up front
// so the body streams with a known Content-Length.
type envelope struct {
	head, tail  []byte
	contentType string
}

func newEnvelope(meta []byte, filename string) (*envelope, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	metaHeader := textproto.MIMEHeader{}
	metaHeader.Set("Content-Disposition", `form-data; name="file_meta"`)
	metaHeader.Set("Content-Type", "application/json")
	metaPart, err := w.CreatePart(metaHeader)
	if err != nil {
		return nil, err
	}
	if _, err := metaPart.Write(meta); err != nil {
		return nil, err
	}
	fileHeader := textproto.MIMEHeader{}
	fileHeader.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, filename))
	fileHeader.Set("Content-Type", "text/csv")
	if _, err := w.CreatePart(fileHeader); err != nil {
		return nil, err
	}
	head := bytes.Clone(buf.Bytes())
	buf.Reset()
	if err := w.Close(); err != nil {
		return nil, err
	}
	return &envelope{head: head, tail: bytes.Clone(buf.Bytes()), contentType: w.FormDataContentType()}, nil
}

func (e *envelope) size(partSize int64) int64 {
	return int64(len(e.head)) + partSize + int64(len(e.tail))
}

func (e *envelope) wrap(part io.ReadCloser, partSize int64) io.ReadCloser {
	body := io.MultiReader(bytes.NewReader(e.head), &exactReader{r: part, left: partSize}, bytes.NewReader(e.tail))
	return struct {
		io.Reader
		io.Closer
	}{body, part}
}

// errPartLength makes a part that is shorter or longer than announced fail
// the call rather than send a body that disagrees with its Content-Length.
var errPartLength = errors.New("part reader did not yield exactly the announced size")

type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left == 0 {
		var probe [1]byte
		if n, _ := e.r.Read(probe[:]); n > 0 {
			return 0, errPartLength
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, errPartLength
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}
