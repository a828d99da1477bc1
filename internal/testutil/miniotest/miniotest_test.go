package miniotest

import (
	"context"
	"io"
	"testing"

	"github.com/minio/minio-go/v7"
)

func TestStartServesObjectsAndStopCleansUp(t *testing.T) {
	s := StartT(t)
	ctx := context.Background()
	if err := s.MakeBucket(ctx, "bucket"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutBytes(ctx, "bucket", "k", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	obj, err := s.Client.GetObject(ctx, "bucket", "k", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	if err != nil || string(got) != "hello" {
		t.Fatalf("read back %q, %v; want hello", got, err)
	}

	s.Stop()
	if s.healthy("live") {
		t.Error("server still answers after Stop")
	}
}
