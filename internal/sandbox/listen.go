package sandbox

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"time"
)

// Certificates are a CA and a server certificate signed by it (ECDSA P-256,
// quick to make), all PEM.
type Certificates struct {
	CAPEM, CertPEM, KeyPEM []byte
}

// NewCertificates makes a CA and a server certificate for 127.0.0.1, ::1
// and localhost, valid for a year.
func NewCertificates() (*Certificates, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wechatpay-sandbox CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate server key: %w", err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "wechatpay-sandbox"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Certificates{
		CAPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// ListenOptions say where and how to serve.
type ListenOptions struct {
	Addr string // default 127.0.0.1:0 (a free port)
	TLS  bool   // HTTPS; with a generated CA unless CertPEM and KeyPEM are set
	// CertPEM and KeyPEM are a server certificate and key to use for TLS.
	CertPEM, KeyPEM []byte
	// WithAdmin also serves the unauthenticated /sandbox/ admin endpoints.
	WithAdmin bool
}

// Instance is a listening sandbox.
type Instance struct {
	URL   string // scheme://127.0.0.1:port, the client's base URL
	CAPEM []byte // the generated CA to trust; nil for plain HTTP or given certificates
	srv   *http.Server
}

// Listen starts serving in the background until Close or Shutdown.
func (s *Server) Listen(opts ListenOptions) (*Instance, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	handler := s.Handler()
	if opts.WithAdmin {
		handler = s.HandlerWithAdmin()
	}
	inst := &Instance{srv: &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}}
	tlsConfig, caPEM, err := serverTLS(opts)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("sandbox listen: %w", err)
	}
	serve, scheme := func() error { return inst.srv.Serve(ln) }, "http"
	if tlsConfig != nil {
		inst.srv.TLSConfig = tlsConfig
		inst.CAPEM, scheme = caPEM, "https"
		serve = func() error { return inst.srv.ServeTLS(ln, "", "") } // ServeTLS also offers HTTP/2
	}
	inst.URL = scheme + "://" + ln.Addr().String()
	go func() {
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(fmt.Sprintf("sandbox: serve: %v", err))
		}
	}()
	return inst, nil
}

// serverTLS builds the TLS config, or nil for plain HTTP.
func serverTLS(opts ListenOptions) (*tls.Config, []byte, error) {
	if !opts.TLS {
		return nil, nil, nil
	}
	certPEM, keyPEM, caPEM := opts.CertPEM, opts.KeyPEM, []byte(nil)
	if len(certPEM) == 0 {
		certs, err := NewCertificates()
		if err != nil {
			return nil, nil, err
		}
		certPEM, keyPEM, caPEM = certs.CertPEM, certs.KeyPEM, certs.CAPEM
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox TLS: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, caPEM, nil
}

// Shutdown stops accepting calls and waits for running ones.
func (i *Instance) Shutdown(ctx context.Context) error { return i.srv.Shutdown(ctx) }

// Close stops at once.
func (i *Instance) Close() error { return i.srv.Close() }
