package sandbox_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/crowdpack/crowdpack/internal/sandbox"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

func TestWriteFilesGivesAWorkingSandboxAndSecret(t *testing.T) {
	dir := t.TempDir()
	if err := brandA.WriteFiles(dir, "marketing", "wechatpay-brand"); err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}

	t.Run("sandbox.yaml loads and serves the brand", func(t *testing.T) {
		cfg, err := sandbox.LoadConfig(filepath.Join(dir, sandbox.FileConfig))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sandbox.New(cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.PublicKeyID != brandA.PublicKeyID || cfg.Brands[0].BrandID != brandA.BrandID {
			t.Fatalf("config %+v", cfg)
		}
	})
	t.Run("secret.yaml holds the five keys the operator reads", func(t *testing.T) {
		var secret struct {
			Kind     string            `json:"kind"`
			Metadata map[string]string `json:"metadata"`
			Data     map[string][]byte `json:"data"`
		}
		if err := yaml.Unmarshal(read(sandbox.FileSecret), &secret); err != nil {
			t.Fatal(err)
		}
		if secret.Kind != "Secret" || secret.Metadata["namespace"] != "marketing" || secret.Metadata["name"] != "wechatpay-brand" {
			t.Fatalf("secret header %+v", secret)
		}
		if diff := cmp.Diff(brandA.SecretData(), secret.Data); diff != "" {
			t.Fatalf("secret data (-want +got):\n%s", diff)
		}
		if _, err := wechatpay.CredentialsFromSecretData(secret.Data); err != nil {
			t.Fatalf("the operator cannot read the Secret: %v", err)
		}
	})
	t.Run("the files match the Secret and each other", func(t *testing.T) {
		data := brandA.SecretData()
		for file, key := range map[string]string{sandbox.FileBrandPrivateKey: wechatpay.SecretKeyPrivateKey, sandbox.FileWechatPayPublicKey: wechatpay.SecretKeyPublicKey} {
			if string(read(file)) != string(data[key]) {
				t.Errorf("%s differs from the Secret's %s", file, key)
			}
		}
		if block, _ := pem.Decode(read(sandbox.FileBrandPrivateKey)); block == nil || block.Type != "PRIVATE KEY" {
			t.Errorf("apiclient_key.pem is not PKCS#8")
		}
	})
	t.Run("the server certificate is trusted through ca.crt for 127.0.0.1 and localhost", func(t *testing.T) {
		cert, err := tls.X509KeyPair(read(sandbox.FileTLSCert), read(sandbox.FileTLSKey))
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(read(sandbox.FileCA))
		for _, host := range []string{"127.0.0.1", "localhost"} {
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
				t.Errorf("%s: %v", host, err)
			}
		}
	})
}
