package source

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"time"

	"github.com/crowdpack/crowdpack/internal/certs"
)

// responseHeaderTimeout bounds the wait for a server that accepted a request
// but never answers; reading the body is bounded by the caller's context.
const responseHeaderTimeout = time.Minute

// NewTransport returns a transport for object storage, to be shared by
// sources for keep-alive: bytes arrive as stored (a transparently gunzipped
// body would have another size and digest), a server that never answers
// is given up on, and every connection (each redirect hop, each retry) is
// checked by g on the address it resolved to.
func NewTransport(g *Guard) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DisableCompression = true
	t.ResponseHeaderTimeout = responseHeaderTimeout
	if g != nil {
		t.DialContext = g.dialContext
	}
	return t
}

// newTransport returns the transport a source uses: base as is when there is
// no CA bundle to add (so sources can share its connections), otherwise a
// clone of base (or of NewTransport(g)) trusting the system roots plus
// caBundle. A base transport must come from NewTransport with the same guard.
func newTransport(base http.RoundTripper, caBundle []byte, g *Guard) (http.RoundTripper, error) {
	if base != nil && len(caBundle) == 0 {
		return base, nil
	}
	var t *http.Transport
	switch b := base.(type) {
	case nil:
		t = NewTransport(g)
	case *http.Transport:
		t = b.Clone()
	default:
		return nil, fmt.Errorf("%w: a CA bundle needs an *http.Transport to add it to, not %T", ErrInvalidConfig, base)
	}
	if len(caBundle) == 0 {
		return t, nil
	}
	pool, err := certs.Pool(caBundle)
	if err != nil {
		return nil, fmt.Errorf("%w: the %w", ErrInvalidConfig, err)
	}
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	t.TLSClientConfig.RootCAs = pool
	return t, nil
}
