//go:build e2enode

package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/crowdpack/crowdpack/internal/sandbox"
)

// sandboxPartSize makes parts small, so that an upload has many of them.
const sandboxPartSize = 16 << 10

// services are what the manager in its pod talks to besides the API
// server, run on the host at its address (pods reach it there): the
// WeChat Pay sandbox over HTTPS, recording every call, and MinIO.
type services struct {
	identity  *sandbox.Identity
	sandbox   *sandbox.Server
	sandboxAt *sandbox.Instance
	caPEM     []byte // the sandbox's CA, for the chart's wechatpay.caBundle

	minioEndpoint       string
	minioUser, minioKey string
	minio               *minio.Client
	minioCmd            *exec.Cmd
	minioDir            string
}

func startServices(host string) (*services, error) {
	s := &services{}
	if err := s.startSandbox(host); err != nil {
		return nil, err
	}
	if err := s.startMinIO(host); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *services) startSandbox(host string) error {
	var err error
	if s.identity, err = sandbox.NewIdentity("1000000000001"); err != nil {
		return err
	}
	cfg := s.identity.Config()
	cfg.PartSize = sandboxPartSize
	if s.sandbox, err = sandbox.New(cfg); err != nil {
		return err
	}
	caPEM, certPEM, keyPEM, err := serverCertificate(net.ParseIP(host))
	if err != nil {
		return err
	}
	s.caPEM = caPEM
	s.sandboxAt, err = s.sandbox.Listen(sandbox.ListenOptions{Addr: net.JoinHostPort(host, "0"), TLS: true, CertPEM: certPEM, KeyPEM: keyPEM})
	return err
}

// serverCertificate is a CA and a certificate it signs for ip.
func serverCertificate(ip net.IP) (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e-node sandbox CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "wechatpay-sandbox"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{ip},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// startMinIO runs bin/minio on the host's address (miniotest binds
// 127.0.0.1, which a pod cannot reach).
func (s *services) startMinIO(host string) error {
	port, err := freePort(host)
	if err != nil {
		return err
	}
	consolePort, err := freePort("127.0.0.1")
	if err != nil {
		return err
	}
	if s.minioDir, err = os.MkdirTemp("", "e2e-node-minio-"); err != nil {
		return err
	}
	s.minioEndpoint = net.JoinHostPort(host, strconv.Itoa(port))
	s.minioUser, s.minioKey = "e2e"+randomHex(4), randomHex(16)
	logFile, err := os.Create(filepath.Join(s.minioDir, "minio.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	s.minioCmd = exec.Command(filepath.Join(root, "bin", "minio"), "server", "--quiet", "--address", s.minioEndpoint,
		"--console-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(consolePort)), filepath.Join(s.minioDir, "data"))
	s.minioCmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+s.minioUser, "MINIO_ROOT_PASSWORD="+s.minioKey, "MINIO_BROWSER=off", "MINIO_UPDATE=off")
	s.minioCmd.Stdout, s.minioCmd.Stderr = logFile, logFile
	s.minioCmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.minioCmd.Start(); err != nil {
		return fmt.Errorf("start minio (hack/tools.sh minio builds it): %w", err)
	}
	if err := waitHTTP("http://"+s.minioEndpoint+"/minio/health/ready", time.Minute); err != nil {
		return fmt.Errorf("minio: %w", err)
	}
	s.minio, err = minio.New(s.minioEndpoint, &minio.Options{Creds: credentials.NewStaticV4(s.minioUser, s.minioKey, "")})
	return err
}

func (s *services) stop() {
	if s.sandboxAt != nil {
		_ = s.sandboxAt.Close()
	}
	if s.minioCmd != nil && s.minioCmd.Process != nil {
		_ = s.minioCmd.Process.Kill()
		_ = s.minioCmd.Wait()
	}
	if s.minioDir != "" {
		_ = os.RemoveAll(s.minioDir)
	}
}

func (s *services) putObject(ctx context.Context, bucket, key string, data []byte) error {
	if err := s.minio.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		if exists, _ := s.minio.BucketExists(ctx, bucket); !exists {
			return err
		}
	}
	_, err := s.minio.PutObject(ctx, bucket, key, bytesReader(data), int64(len(data)), minio.PutObjectOptions{})
	return err
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitHTTP(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
