package miniotest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"

	"github.com/minio/minio-go/v7"
)

// GetAndHash is the necessary work of a digest and nothing else, the
// baseline of the digest benchmarks: one GetObject through minio-go, its
// body copied in 256 KiB buffers into SHA-256 and, with an uploadSize,
// also into a SHA-256 per upload of that many bytes, in one pass. It
// returns the file's digest.
func (s *Server) GetAndHash(ctx context.Context, bucket, key string, uploadSize int64) (string, error) {
	body, _, _, err := minio.Core{Client: s.Client}.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return "", err
	}
	defer body.Close()
	file := sha256.New()
	var w io.Writer = file
	if uploadSize > 0 {
		w = &uploadHashes{file: file, upload: sha256.New(), size: uploadSize}
	}
	if _, err := io.CopyBuffer(w, struct{ io.Reader }{body}, make([]byte, 256<<10)); err != nil {
		return "", err
	}
	if u, ok := w.(*uploadHashes); ok && u.at > 0 {
		u.sums = append(u.sums, u.upload.Sum(nil)) // the last upload
	}
	return hex.EncodeToString(file.Sum(nil)), nil
}

// uploadHashes writes to the file's hash and to the current upload's, and
// sums the upload every size bytes.
type uploadHashes struct {
	file, upload hash.Hash
	size, at     int64
	sums         [][]byte
}

func (u *uploadHashes) Write(p []byte) (int, error) {
	_, _ = u.file.Write(p)
	n := len(p)
	for len(p) > 0 {
		take := min(int64(len(p)), u.size-u.at)
		_, _ = u.upload.Write(p[:take])
		p, u.at = p[take:], u.at+take
		if u.at == u.size {
			u.sums = append(u.sums, u.upload.Sum(nil))
			u.upload.Reset()
			u.at = 0
		}
	}
	return n, nil
}
