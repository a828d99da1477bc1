package source

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/crowdpack/crowdpack/internal/testutil/miniotest"
)

// shared is one MinIO for the whole package, started by the first test that
// needs it.
var shared struct {
	once    sync.Once
	server  *miniotest.Server
	err     error
	buckets atomic.Int64
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.server != nil {
		shared.server.Stop()
	}
	os.Exit(code)
}

func minioServer(t testing.TB) *miniotest.Server {
	t.Helper()
	shared.once.Do(func() { shared.server, shared.err = miniotest.Start() })
	if shared.err != nil {
		miniotest.SkipOrFail(t, shared.err)
	}
	return shared.server
}

// newBucket creates a bucket of its own for the calling test.
func newBucket(t testing.TB, s *miniotest.Server, versioned bool) string {
	t.Helper()
	name := fmt.Sprintf("test-%d", shared.buckets.Add(1))
	ctx := context.Background()
	if err := s.MakeBucket(ctx, name); err != nil {
		t.Fatalf("make bucket: %v", err)
	}
	if versioned {
		if err := s.EnableVersioning(ctx, name); err != nil {
			t.Fatalf("enable versioning: %v", err)
		}
	}
	return name
}

func s3Config(s *miniotest.Server, bucket, key string) S3Config {
	return S3Config{
		Endpoint:  s.Endpoint,
		Bucket:    bucket,
		Key:       key,
		Insecure:  true,
		AccessKey: s.AccessKey,
		SecretKey: s.SecretKey,
	}
}

func mustNewS3(t testing.TB, cfg S3Config) Source {
	t.Helper()
	src, err := NewS3(cfg)
	if err != nil {
		t.Fatalf("NewS3: %v", err)
	}
	return src
}

// phoneLines is a deterministic reader of size bytes of MD5 phone lines,
// cycling through a small precomputed block so any size costs no memory.
type phoneLines struct {
	block     []byte
	offset    int64
	remaining int64
}

const phoneLineLen = 33 // 32 hex characters and a newline

func newPhoneLines(size int64) *phoneLines {
	var b strings.Builder
	for i := range 4096 {
		sum := md5.Sum(fmt.Appendf(nil, "1390000%04d", i))
		b.WriteString(hex.EncodeToString(sum[:]) + "\n")
	}
	return &phoneLines{block: []byte(b.String()), remaining: size}
}

func (p *phoneLines) Read(buf []byte) (int, error) {
	if p.remaining == 0 {
		return 0, io.EOF
	}
	buf = buf[:min(int64(len(buf)), p.remaining)]
	n := 0
	for n < len(buf) {
		copied := copy(buf[n:], p.block[p.offset:])
		n += copied
		p.offset = (p.offset + int64(copied)) % int64(len(p.block))
	}
	p.remaining -= int64(n)
	return n, nil
}

func sha256Hex(r io.Reader) string {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		panic(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func phoneBytes(size int64) []byte {
	b, _ := io.ReadAll(newPhoneLines(size))
	return b
}
