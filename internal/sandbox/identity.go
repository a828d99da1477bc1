package sandbox

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// Identity is a matching set of brand and sandbox keys: what a brand gets
// from WeChat Pay (API key, certificate serial, WeChat Pay public key and its
// ID) plus the sandbox's private half of that WeChat Pay key.
type Identity struct {
	BrandID             string
	CertificateSerialNo string
	BrandKey            *rsa.PrivateKey // apiclient_key.pem
	PublicKeyID         string
	WechatPayKey        *rsa.PrivateKey // the sandbox's; its public half is wxp_pub.pem
}

// NewIdentity generates an identity for brandID (two RSA 2048 keys: slow-ish,
// make one per test package).
func NewIdentity(brandID string) (*Identity, error) {
	brandKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate brand key: %w", err)
	}
	wechatPayKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate WeChat Pay key: %w", err)
	}
	digits, err := rand.Int(rand.Reader, new(big.Int).Exp(big.NewInt(10), big.NewInt(24), nil))
	if err != nil {
		return nil, err
	}
	return &Identity{
		BrandID:             brandID,
		CertificateSerialNo: strings.ToUpper(randomHex(20)), // brand certificate serials are 40 hex digits
		BrandKey:            brandKey,
		PublicKeyID:         fmt.Sprintf("PUB_KEY_ID_%024d", digits),
		WechatPayKey:        wechatPayKey,
	}, nil
}

// SecretData is the brand credentials Secret's data, keyed as the operator reads it.
func (id *Identity) SecretData() map[string][]byte {
	return map[string][]byte{
		wechatpay.SecretKeyBrandID:             []byte(id.BrandID),
		wechatpay.SecretKeyCertificateSerialNo: []byte(id.CertificateSerialNo),
		wechatpay.SecretKeyPrivateKey:          privateKeyPEM(id.BrandKey),
		wechatpay.SecretKeyPublicKeyID:         []byte(id.PublicKeyID),
		wechatpay.SecretKeyPublicKey:           publicKeyPEM(&id.WechatPayKey.PublicKey),
	}
}

// Credentials parses SecretData, exactly as the operator would.
func (id *Identity) Credentials() (*wechatpay.Credentials, error) {
	return wechatpay.CredentialsFromSecretData(id.SecretData())
}

// Brand is the sandbox's view of this identity's brand.
func (id *Identity) Brand() BrandConfig {
	return BrandConfig{
		BrandID:             id.BrandID,
		CertificateSerialNo: id.CertificateSerialNo,
		PublicKeyPEM:        string(publicKeyPEM(&id.BrandKey.PublicKey)),
	}
}

// Config is a sandbox config serving this identity's brand, keys inline.
func (id *Identity) Config() Config {
	return Config{
		PublicKeyID:   id.PublicKeyID,
		PrivateKeyPEM: string(privateKeyPEM(id.WechatPayKey)),
		Brands:        []BrandConfig{id.Brand()},
	}
}

// SecretYAML renders a Kubernetes Secret holding SecretData.
func (id *Identity) SecretYAML(namespace, name string) ([]byte, error) {
	return yaml.Marshal(map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"type":       "Opaque",
		"metadata":   map[string]string{"name": name, "namespace": namespace},
		"data":       id.SecretData(), // []byte marshals as base64
	})
}

// Identity files written by WriteFiles.
const (
	FileBrandPrivateKey     = "apiclient_key.pem"
	FileBrandPublicKey      = "apiclient_pub.pem"
	FileWechatPayPublicKey  = "wxp_pub.pem"
	FileWechatPayPrivateKey = "wxp_key.pem"
	FileConfig              = "sandbox.yaml"
	FileSecret              = "secret.yaml"
	FileCA                  = "ca.crt"
	FileTLSCert             = "tls.crt"
	FileTLSKey              = "tls.key"
)

// WriteFiles writes the identity, a sandbox.yaml pointing at its key files,
// a CA and a server certificate for 127.0.0.1 and localhost, and secret.yaml
// (the Secret namespace/secretName) into dir. Private keys are mode 0600.
func (id *Identity) WriteFiles(dir, namespace, secretName string) error {
	certs, err := NewCertificates()
	if err != nil {
		return err
	}
	secret, err := id.SecretYAML(namespace, secretName)
	if err != nil {
		return err
	}
	cfg, err := yaml.Marshal(Config{
		PublicKeyID:    id.PublicKeyID,
		PrivateKeyFile: FileWechatPayPrivateKey,
		Brands: []BrandConfig{{
			BrandID: id.BrandID, CertificateSerialNo: id.CertificateSerialNo, PublicKeyFile: FileBrandPublicKey,
		}},
		PartSize: DefaultPartSize,
	})
	if err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{FileBrandPrivateKey, privateKeyPEM(id.BrandKey), 0o600},
		{FileBrandPublicKey, publicKeyPEM(&id.BrandKey.PublicKey), 0o644},
		{FileWechatPayPublicKey, publicKeyPEM(&id.WechatPayKey.PublicKey), 0o644},
		{FileWechatPayPrivateKey, privateKeyPEM(id.WechatPayKey), 0o600},
		{FileConfig, cfg, 0o644},
		{FileSecret, secret, 0o600},
		{FileCA, certs.CAPEM, 0o644},
		{FileTLSCert, certs.CertPEM, 0o644},
		{FileTLSKey, certs.KeyPEM, 0o600},
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write identity: %w", err)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("write identity: %w", err)
		}
	}
	return nil
}

func privateKeyPEM(key *rsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err) // cannot fail for an RSA key
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func publicKeyPEM(key *rsa.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		panic(err) // cannot fail for an RSA key
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
