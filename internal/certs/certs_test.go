package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"
)

// selfSigned returns a CA certificate and its PEM encoding.
func selfSigned(t *testing.T) (*x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "crowdpack test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		DNSNames:              []string{"storage.example"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestPool(t *testing.T) {
	cert, certPEM := selfSigned(t)
	keyOnly := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not a certificate")})
	tests := []struct {
		name       string
		bundle     []byte
		wantErr    error
		wantTrusts bool
	}{
		{name: "a bundle of one certificate is trusted", bundle: certPEM, wantTrusts: true},
		{name: "a certificate after other PEM blocks is trusted", bundle: append(append([]byte{}, keyOnly...), certPEM...), wantTrusts: true},
		{name: "an empty bundle is refused", bundle: nil, wantErr: ErrNoCertificate},
		{name: "a bundle of a key only is refused", bundle: keyOnly, wantErr: ErrNoCertificate},
		{name: "a bundle that is not PEM is refused", bundle: []byte("no certificate here"), wantErr: ErrNoCertificate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool, err := Pool(tt.bundle)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Pool error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			_, verr := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "storage.example"})
			if trusted := verr == nil; trusted != tt.wantTrusts {
				t.Fatalf("certificate trusted = %t (%v), want %t", trusted, verr, tt.wantTrusts)
			}
		})
	}
}

func TestPoolKeepsTheSystemRoots(t *testing.T) {
	system, err := x509.SystemCertPool()
	if err != nil {
		t.Skipf("no system pool here: %v", err)
	}
	_, certPEM := selfSigned(t)
	pool, err := Pool(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	system.AppendCertsFromPEM(certPEM)
	if !pool.Equal(system) {
		t.Fatal("the pool is not the system roots plus the bundle")
	}
}
