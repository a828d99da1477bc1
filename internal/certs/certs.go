// Package certs builds the certificate pools crowdpack trusts.
package certs

import (
	"crypto/x509"
	"errors"
)

// ErrNoCertificate is returned when a CA bundle holds no PEM certificate.
var ErrNoCertificate = errors.New("CA bundle holds no PEM certificate")

// Pool returns the system roots (none where the system has no pool) plus
// the PEM certificates in pemBundle, which must hold at least one.
func Pool(pemBundle []byte) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemBundle) {
		return nil, ErrNoCertificate
	}
	return pool, nil
}
