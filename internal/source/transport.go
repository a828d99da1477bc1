package source

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"time"
)

// responseHeaderTimeout bounds the wait for a server that accepted a request
// but never answers; reading the body is bounded by the caller's context.
const responseHeaderTimeout = time.Minute

// NewTransport returns a transport for object storage, to be shared by
// sources for keep-alive: bytes arrive as stored (a transparently gunzipped
// body would have another size and digest), and a server that never answers
// is given up on.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DisableCompression = true
	t.ResponseHeaderTimeout = responseHeaderTimeout
	return t
}

// newTransport returns the transport a source uses: base as is when there is
// no CA bundle to add (so sources can share its connections), otherwise a
// clone of base (or of the default transport) trusting the system roots plus
// caBundle.
func newTransport(base http.RoundTripper, caBundle []byte) (http.RoundTripper, error) {
	if base != nil && len(caBundle) == 0 {
		return base, nil
	}
	var t *http.Transport
	switch b := base.(type) {
	case nil:
		t = NewTransport()
	case *http.Transport:
		t = b.Clone()
	default:
		return nil, fmt.Errorf("%w: a CA bundle needs an *http.Transport to add it to, not %T", ErrInvalidConfig, base)
	}
	if len(caBundle) == 0 {
		return t, nil
	}
	pool, err := certPool(caBundle)
	if err != nil {
		return nil, err
	}
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	t.TLSClientConfig.RootCAs = pool
	return t, nil
}

// certPool returns the system roots plus the PEM certificates in caBundle.
func certPool(caBundle []byte) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(caBundle) {
		return nil, fmt.Errorf("%w: the CA bundle holds no PEM certificate", ErrInvalidConfig)
	}
	return pool, nil
}
