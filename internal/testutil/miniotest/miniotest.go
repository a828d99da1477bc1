// Package miniotest starts a real MinIO server on 127.0.0.1 for tests, with
// a fresh data directory and random root credentials.
//
// The binary is $CROWDPACK_MINIO or <repo root>/bin/minio, built by
// `make minio` (hack/tools.sh minio). Without it, StartT skips the test,
// unless CI is set, where a missing server is a failure.
package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/crowdpack/crowdpack/internal/testutil/repo"
)

// ErrNoBinary means the MinIO binary was not found.
var ErrNoBinary = errors.New("minio binary not found: run `make minio` (or hack/tools.sh minio), or set CROWDPACK_MINIO")

const (
	startTimeout = 60 * time.Second
	stopTimeout  = 5 * time.Second
	startTries   = 3 // a free port can be taken between probing and binding
)

// Server is a running MinIO.
type Server struct {
	// Endpoint is host:port, plain HTTP.
	Endpoint  string
	AccessKey string
	SecretKey string
	// Client is a client with the root credentials.
	Client *minio.Client

	cmd     *exec.Cmd
	exited  chan struct{}
	dir     string
	binary  string
	console string // the console's address, kept across restarts
}

// StartT starts a server that is stopped when t ends. It skips t when the
// binary is missing, unless the CI environment variable is set.
func StartT(t testing.TB) *Server {
	t.Helper()
	s, err := Start()
	if err != nil {
		SkipOrFail(t, err)
	}
	t.Cleanup(s.Stop)
	return s
}

// SkipOrFail ends t for an error from Start: a skip when the binary is
// missing outside CI, a failure otherwise.
func SkipOrFail(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoBinary) && os.Getenv("CI") == "" {
		t.Skipf("skipping: %v", err)
	}
	t.Fatalf("start minio: %v", err)
}

// Start starts a server; the caller must Stop it. It suits TestMain.
func Start() (*Server, error) {
	binary, err := findBinary()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range startTries {
		s, err := startOnce(binary)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func findBinary() (string, error) {
	if path := os.Getenv("CROWDPACK_MINIO"); path != "" {
		return checkExecutable(path)
	}
	root, err := repo.Root()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoBinary, err)
	}
	return checkExecutable(filepath.Join(root, "bin", "minio"))
}

func checkExecutable(path string) (string, error) {
	info, err := os.Stat(path)
	if err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%w (looked at %s)", ErrNoBinary, path)
	}
	return path, nil
}

func startOnce(binary string) (*Server, error) {
	dir, err := os.MkdirTemp("", "miniotest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, AccessKey: randomHex(8), SecretKey: randomHex(16)}
	if err := s.launch(binary); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.waitReady(); err != nil {
		s.Stop()
		return nil, err
	}
	s.Client, err = minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, "")})
	if err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) launch(binary string) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	s.binary = binary
	s.Endpoint = net.JoinHostPort("127.0.0.1", ports[0])
	s.console = net.JoinHostPort("127.0.0.1", ports[1])
	return s.run()
}

// run starts the server process on s.Endpoint with the data in s.dir.
func (s *Server) run() error {
	logFile, err := os.OpenFile(filepath.Join(s.dir, "minio.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	s.cmd = exec.Command(s.binary, "server", "--quiet",
		"--address", s.Endpoint,
		"--console-address", s.console,
		filepath.Join(s.dir, "data"))
	s.cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = dieWithParent()
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.binary, err)
	}
	exited, cmd := make(chan struct{}), s.cmd
	s.exited = exited
	go func() {
		cmd.Wait()
		close(exited)
	}()
	return nil
}

// Restart kills the server (SIGKILL: reads in flight break, as when a
// node dies), waits down, and starts it again on the same address with
// the same data and credentials, returning once it is ready.
func (s *Server) Restart(down time.Duration) error {
	if err := s.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("kill minio: %w", err)
	}
	<-s.exited
	time.Sleep(down)
	if err := s.run(); err != nil {
		return err
	}
	return s.waitReady()
}

// freePorts returns n distinct ports that were free a moment ago on
// 127.0.0.1 (each listener stays open until all are picked).
func freePorts(n int) ([]string, error) {
	var ports []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	return ports, nil
}

// waitReady polls the liveness and readiness endpoints until both answer 200.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("minio exited during start-up:\n%s", s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if s.healthy("live") && s.healthy("ready") {
			return nil
		}
	}
	return fmt.Errorf("minio not ready after %s:\n%s", startTimeout, s.logTail())
}

func (s *Server) healthy(probe string) bool {
	resp, err := http.Get("http://" + s.Endpoint + "/minio/health/" + probe)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (s *Server) logTail() string {
	log, _ := os.ReadFile(filepath.Join(s.dir, "minio.log"))
	return string(log[max(0, len(log)-2000):])
}

// Stop terminates the server (SIGTERM, then SIGKILL after 5 s) and removes
// its data. It is safe to call more than once.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(stopTimeout):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	os.RemoveAll(s.dir)
}

// MakeBucket creates a bucket.
func (s *Server) MakeBucket(ctx context.Context, name string) error {
	return s.Client.MakeBucket(ctx, name, minio.MakeBucketOptions{})
}

// EnableVersioning turns versioning on for a bucket.
func (s *Server) EnableVersioning(ctx context.Context, bucket string) error {
	return s.Client.EnableVersioning(ctx, bucket)
}

// PutObject uploads size bytes from r in 16 MiB parts, so a large object
// costs little memory.
func (s *Server) PutObject(ctx context.Context, bucket, key string, r io.Reader, size int64) (minio.UploadInfo, error) {
	return s.Client.PutObject(ctx, bucket, key, r, size, minio.PutObjectOptions{PartSize: 16 << 20})
}

// PutBytes uploads data.
func (s *Server) PutBytes(ctx context.Context, bucket, key string, data []byte) (minio.UploadInfo, error) {
	return s.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)))
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
