package wechatpay

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Keys of the brand credentials Secret, named as WeChat Pay's own files and fields.
const (
	SecretKeyBrandID             = "brand_id"
	SecretKeyCertificateSerialNo = "certificate_serial_no"
	SecretKeyPrivateKey          = "apiclient_key.pem"
	SecretKeyPublicKeyID         = "wechatpay_public_key_id"
	SecretKeyPublicKey           = "wxp_pub.pem"
)

// MinRSABits is the smallest RSA key the brand API accepts (RSA 2048).
const MinRSABits = 2048

// MaxRSABits is the largest RSA key accepted: WeChat Pay issues 2048-bit
// keys, and a tenant's huge key would make every signature cost the
// manager seconds of CPU.
const MaxRSABits = 4096

// maxKeyDER bounds the DER of a key before it is parsed (parsing validates
// the key, which is slow for a huge one): a 4,096-bit RSA private key in
// PKCS#8 takes about 2,400 bytes.
const maxKeyDER = 3 << 10

// ErrBadCredentials marks every credentials problem: it is terminal until a
// human fixes the Secret.
var ErrBadCredentials = errors.New("bad credentials")

// CredentialsError says which credential is wrong and why, never its value.
type CredentialsError struct {
	Field  string // Secret key, e.g. "apiclient_key.pem"
	Reason string
}

func (e *CredentialsError) Error() string {
	if e.Field == "" {
		return "bad credentials: " + e.Reason
	}
	return fmt.Sprintf("bad credentials: %s: %s", e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrBadCredentials) true.
func (e *CredentialsError) Is(target error) bool { return target == ErrBadCredentials }

// Credentials are what a brand needs to call the API and verify its answers.
type Credentials struct {
	BrandID             string
	CertificateSerialNo string // serial of the brand API certificate
	PrivateKey          *rsa.PrivateKey
	PublicKeyID         string // WeChat Pay public key ID, e.g. PUB_KEY_ID_0112…
	PublicKey           *rsa.PublicKey
}

// ParseCredentials builds Credentials from the Secret's values. The private
// key may be PKCS#8 ("PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY") PEM; the
// public key is SPKI ("PUBLIC KEY") PEM. Surrounding whitespace of the
// identifiers is ignored, since Secrets made with echo carry a newline.
func ParseCredentials(brandID, certificateSerialNo string, privateKeyPEM []byte, publicKeyID string, publicKeyPEM []byte) (*Credentials, error) {
	c := &Credentials{
		BrandID:             strings.TrimSpace(brandID),
		CertificateSerialNo: strings.TrimSpace(certificateSerialNo),
		PublicKeyID:         strings.TrimSpace(publicKeyID),
	}
	for _, f := range []struct{ name, value string }{
		{SecretKeyBrandID, c.BrandID},
		{SecretKeyCertificateSerialNo, c.CertificateSerialNo},
		{SecretKeyPublicKeyID, c.PublicKeyID},
	} {
		if err := checkHeaderSafe(f.name, f.value); err != nil {
			return nil, err
		}
	}
	var err error
	if c.PrivateKey, err = ParsePrivateKeyPEM(privateKeyPEM); err != nil {
		return nil, withField(err, SecretKeyPrivateKey)
	}
	if c.PublicKey, err = ParsePublicKeyPEM(publicKeyPEM); err != nil {
		return nil, withField(err, SecretKeyPublicKey)
	}
	return c, nil
}

// CredentialsFromSecretData is ParseCredentials over a Secret's data map; a
// missing key is reported by name.
func CredentialsFromSecretData(data map[string][]byte) (*Credentials, error) {
	for _, k := range []string{SecretKeyBrandID, SecretKeyCertificateSerialNo, SecretKeyPrivateKey, SecretKeyPublicKeyID, SecretKeyPublicKey} {
		if _, ok := data[k]; !ok {
			return nil, &CredentialsError{Field: k, Reason: "missing"}
		}
	}
	return ParseCredentials(string(data[SecretKeyBrandID]), string(data[SecretKeyCertificateSerialNo]),
		data[SecretKeyPrivateKey], string(data[SecretKeyPublicKeyID]), data[SecretKeyPublicKey])
}

// checkHeaderSafe refuses values that would be empty or break the quoted
// Authorization parameters and headers they are written into.
func checkHeaderSafe(field, v string) error {
	if v == "" {
		return &CredentialsError{Field: field, Reason: "empty"}
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] > '~' || v[i] == '"' || v[i] == ',' {
			return &CredentialsError{Field: field, Reason: "contains a space, quote, comma or non-printable character"}
		}
	}
	return nil
}

func withField(err error, field string) error {
	var ce *CredentialsError
	if errors.As(err, &ce) {
		return &CredentialsError{Field: field, Reason: ce.Reason}
	}
	return err
}

// ParsePrivateKeyPEM decodes an RSA private key of 2048 to 4096 bits from
// PKCS#8 or PKCS#1 PEM. Errors are *CredentialsError without a field name.
func ParsePrivateKeyPEM(data []byte) (*rsa.PrivateKey, error) {
	block, err := decodePEM(data)
	if err != nil {
		return nil, err
	}
	if len(block.Bytes) > maxKeyDER {
		return nil, &CredentialsError{Reason: fmt.Sprintf("the key is larger than %d bits", MaxRSABits)}
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
		return nil, &CredentialsError{Reason: fmt.Sprintf("found a %s where a private key belongs", strings.ToLower(block.Type))}
	default:
		return nil, &CredentialsError{Reason: fmt.Sprintf("unexpected PEM block %q, want PRIVATE KEY or RSA PRIVATE KEY", block.Type)}
	}
	if err != nil {
		return nil, &CredentialsError{Reason: "malformed " + block.Type}
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, &CredentialsError{Reason: fmt.Sprintf("not an RSA key (%T)", key)}
	}
	if err := checkSize(rsaKey.N.BitLen()); err != nil {
		return nil, err
	}
	if bits := rsaKey.N.BitLen(); bits > MaxRSABits {
		return nil, &CredentialsError{Reason: fmt.Sprintf("RSA key has %d bits, want at most %d", bits, MaxRSABits)}
	}
	return rsaKey, nil
}

// ParsePublicKeyPEM decodes an RSA public key of at least 2048 bits from SPKI
// ("PUBLIC KEY") PEM, as in WeChat Pay's wxp_pub.pem.
func ParsePublicKeyPEM(data []byte) (*rsa.PublicKey, error) {
	block, err := decodePEM(data)
	if err != nil {
		return nil, err
	}
	switch block.Type {
	case "PUBLIC KEY":
	case "PRIVATE KEY", "RSA PRIVATE KEY":
		return nil, &CredentialsError{Reason: "found a private key where a public key belongs"}
	default:
		return nil, &CredentialsError{Reason: fmt.Sprintf("unexpected PEM block %q, want PUBLIC KEY", block.Type)}
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, &CredentialsError{Reason: "malformed PUBLIC KEY"}
	}
	rsaKey, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, &CredentialsError{Reason: fmt.Sprintf("not an RSA key (%T)", key)}
	}
	if err := checkSize(rsaKey.N.BitLen()); err != nil {
		return nil, err
	}
	return rsaKey, nil
}

func decodePEM(data []byte) (*pem.Block, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, &CredentialsError{Reason: "empty"}
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, &CredentialsError{Reason: "no PEM block found"}
	}
	return block, nil
}

func checkSize(bits int) error {
	if bits < MinRSABits {
		return &CredentialsError{Reason: fmt.Sprintf("RSA key has %d bits, want at least %d", bits, MinRSABits)}
	}
	return nil
}
