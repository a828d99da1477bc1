package source

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/minio/minio-go/v7"

	"github.com/crowdpack/crowdpack/internal/linecheck"
)

func TestS3DigestDescribesTheUploadedVersion(t *testing.T) {
	s := minioServer(t)
	cases := []struct {
		name      string
		versioned bool
	}{
		{"an unversioned bucket records size and ETag", false},
		{"a versioned bucket also records the version ID", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bucket := newBucket(t, s, tc.versioned)
			data := phoneBytes((1<<20/phoneLineLen + 5) * phoneLineLen)
			info, err := s.PutBytes(context.Background(), bucket, "exports/vip.csv", data)
			if err != nil {
				t.Fatal(err)
			}
			check, _ := linecheck.New(linecheck.Phone)

			got, err := Digest(context.Background(), mustNewS3(t, s3Config(s, bucket, "exports/vip.csv")), check)
			if err != nil {
				t.Fatalf("Digest: %v", err)
			}
			want := Result{
				Version: Version{Size: int64(len(data)), ETag: info.ETag, VersionID: info.VersionID},
				Digest:  sha256Hex(bytes.NewReader(data)),
				Report:  linecheck.Report{Lines: int64(len(data) / phoneLineLen)},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Digest mismatch (-want +got):\n%s", diff)
			}
			if tc.versioned && got.Version.VersionID == "" {
				t.Error("no version ID recorded for a versioned bucket")
			}
		})
	}
}

func TestS3ErrorsAreClassifiedAndKeepSecretsOut(t *testing.T) {
	s := minioServer(t)
	bucket := newBucket(t, s, false)
	if _, err := s.PutBytes(context.Background(), bucket, "present.csv", []byte("x\n")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		modify func(*S3Config)
		want   error
	}{
		{
			name:   "a missing key is not found",
			modify: func(c *S3Config) { c.Key = "absent.csv" },
			want:   ErrNotFound,
		},
		{
			name:   "a missing bucket is not found",
			modify: func(c *S3Config) { c.Bucket = "no-such-bucket" },
			want:   ErrNotFound,
		},
		{
			name:   "a wrong secret key is access denied",
			modify: func(c *S3Config) { c.SecretKey = "wrong-secret-key-0123456789" },
			want:   ErrAccessDenied,
		},
		{
			name:   "an unknown access key is access denied",
			modify: func(c *S3Config) { c.AccessKey, c.SecretKey = "nobody", "nobody-secret-0123456789" },
			want:   ErrAccessDenied,
		},
		{
			name:   "a session token that does not belong to the key is access denied",
			modify: func(c *S3Config) { c.SessionToken = "session-token-0123456789" },
			want:   ErrAccessDenied,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := s3Config(s, bucket, "present.csv")
			tc.modify(&cfg)
			_, _, err := mustNewS3(t, cfg).Open(context.Background())
			t.Logf("error: %v", err)
			if !errors.Is(err, tc.want) || !isTerminal(err) {
				t.Fatalf("Open error = %v, want %v (terminal)", err, tc.want)
			}
			for _, secret := range []string{cfg.SecretKey, s.SecretKey, cfg.SessionToken} {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains a secret", err)
				}
			}
		})
	}
}

func TestS3AnUnreachableEndpointIsTransient(t *testing.T) {
	src := mustNewS3(t, S3Config{Endpoint: "127.0.0.1:1", Bucket: "bucket", Key: "key", Insecure: true,
		AccessKey: "access", SecretKey: "secret-0123456789"})
	_, _, err := src.Open(context.Background())
	t.Logf("error: %v", err)
	if err == nil || isTerminal(err) {
		t.Fatalf("Open error = %v, want a transient error", err)
	}
	if strings.Contains(err.Error(), "secret-0123456789") {
		t.Errorf("error %q contains the secret key", err)
	}
}

func TestS3OpenRangeReturnsExactlyTheRange(t *testing.T) {
	s := minioServer(t)
	bucket := newBucket(t, s, false)
	data := phoneBytes(3 << 20)
	if _, err := s.PutBytes(context.Background(), bucket, "parts.csv", data); err != nil {
		t.Fatal(err)
	}
	src := mustNewS3(t, s3Config(s, bucket, "parts.csv"))
	v := openVersion(t, src)
	size := int64(len(data))
	cases := []struct {
		name           string
		offset, length int64
	}{
		{"the first byte", 0, 1},
		{"the first part", 0, 1 << 20},
		{"a part in the middle", 1 << 20, 1 << 20},
		{"the last, shorter part", 2 << 20, size - 2<<20},
		{"the last byte", size - 1, 1},
		{"the whole object", 0, size},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := readRange(t, src, v, tc.offset, tc.length)
			if !bytes.Equal(got, data[tc.offset:tc.offset+tc.length]) {
				t.Errorf("range [%d, +%d) returned %d bytes that differ from the object's", tc.offset, tc.length, len(got))
			}
		})
	}
}

func TestS3OpenRangeRefusesARangeOutsideTheObject(t *testing.T) {
	src := mustNewS3(t, S3Config{Endpoint: "127.0.0.1:1", Bucket: "bucket", Key: "key"})
	v := Version{Size: 10, ETag: "etag"}
	for _, r := range [][2]int64{{-1, 2}, {0, 0}, {5, 6}, {10, 1}} {
		if _, err := src.OpenRange(context.Background(), v, r[0], r[1]); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("OpenRange(%d, %d) error = %v, want ErrInvalidConfig", r[0], r[1], err)
		}
	}
}

func TestS3OpenRangeFailsOnceTheObjectChanged(t *testing.T) {
	s := minioServer(t)
	cases := []struct {
		name      string
		versioned bool
		change    func(ctx context.Context, bucket, key string) error
	}{
		{
			name: "overwritten in an unversioned bucket",
			change: func(ctx context.Context, bucket, key string) error {
				_, err := s.PutBytes(ctx, bucket, key, []byte("new content\n"))
				return err
			},
		},
		{
			name:      "overwritten in a versioned bucket",
			versioned: true,
			change: func(ctx context.Context, bucket, key string) error {
				_, err := s.PutBytes(ctx, bucket, key, []byte("new content\n"))
				return err
			},
		},
		{
			name:      "overwritten with the same bytes in a versioned bucket",
			versioned: true,
			change: func(ctx context.Context, bucket, key string) error {
				_, err := s.PutBytes(ctx, bucket, key, []byte("old content\n"))
				return err
			},
		},
		{
			name: "deleted",
			change: func(ctx context.Context, bucket, key string) error {
				return s.Client.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{})
			},
		},
		{
			name:      "deleted in a versioned bucket",
			versioned: true,
			change: func(ctx context.Context, bucket, key string) error {
				return s.Client.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{})
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			bucket := newBucket(t, s, tc.versioned)
			if _, err := s.PutBytes(ctx, bucket, "file.csv", []byte("old content\n")); err != nil {
				t.Fatal(err)
			}
			src := mustNewS3(t, s3Config(s, bucket, "file.csv"))
			v := openVersion(t, src)
			if err := tc.change(ctx, bucket, "file.csv"); err != nil {
				t.Fatal(err)
			}
			_, err := src.OpenRange(ctx, v, 0, 3)
			t.Logf("error: %v", err)
			if !errors.Is(err, ErrChanged) {
				t.Fatalf("OpenRange error = %v, want ErrChanged", err)
			}
		})
	}
}

func TestS3BucketLookupStyles(t *testing.T) {
	s := minioServer(t)
	bucket := newBucket(t, s, false)
	if _, err := s.PutBytes(context.Background(), bucket, "k.csv", []byte("abc")); err != nil {
		t.Fatal(err)
	}
	for _, lookup := range []string{"", "auto", "path"} {
		t.Run("lookup "+lookup+" reads from MinIO", func(t *testing.T) {
			cfg := s3Config(s, bucket, "k.csv")
			cfg.BucketLookup = lookup
			if _, err := Digest(context.Background(), mustNewS3(t, cfg), nil); err != nil {
				t.Fatalf("Digest: %v", err)
			}
		})
	}
}

func TestNewS3ValidatesTheConfig(t *testing.T) {
	valid := S3Config{Endpoint: "cos.ap-shanghai.myqcloud.com", Bucket: "crowd", Key: "vip.csv"}
	cases := []struct {
		name    string
		modify  func(*S3Config)
		wantErr bool
	}{
		{"endpoint, bucket and key are enough", func(*S3Config) {}, false},
		{"dns bucket lookup is accepted", func(c *S3Config) { c.BucketLookup = "dns" }, false},
		{"path bucket lookup is accepted", func(c *S3Config) { c.BucketLookup = "path" }, false},
		{"an unknown bucket lookup is refused", func(c *S3Config) { c.BucketLookup = "virtual" }, true},
		{"a missing endpoint is refused", func(c *S3Config) { c.Endpoint = "" }, true},
		{"a missing bucket is refused", func(c *S3Config) { c.Bucket = "" }, true},
		{"a missing key is refused", func(c *S3Config) { c.Key = "" }, true},
		{"an endpoint with a scheme is refused", func(c *S3Config) { c.Endpoint = "https://cos.example.com" }, true},
		{"an access key without a secret key is refused", func(c *S3Config) { c.AccessKey = "AKID" }, true},
		{"a CA bundle without certificates is refused", func(c *S3Config) { c.CABundle = []byte("not pem") }, true},
		{"static credentials are accepted", func(c *S3Config) { c.AccessKey, c.SecretKey = "AKID", "secret" }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.modify(&cfg)
			_, err := NewS3(cfg)
			if tc.wantErr != (err != nil) {
				t.Fatalf("NewS3 error = %v, want error: %t", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v is not ErrInvalidConfig", err)
			}
		})
	}
}

func openVersion(t testing.TB, src Source) Version {
	t.Helper()
	body, v, err := src.Open(context.Background())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	body.Close()
	return v
}

func readRange(t testing.TB, src Source, v Version, offset, length int64) []byte {
	t.Helper()
	body, err := src.OpenRange(context.Background(), v, offset, length)
	if err != nil {
		t.Fatalf("OpenRange(%d, %d): %v", offset, length, err)
	}
	defer body.Close()
	got, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("read range: %v", err)
	}
	return got
}
