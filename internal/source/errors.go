package source

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/crowdpack/crowdpack/internal/bound"
)

var (
	// ErrNotFound means the bucket, key or URL does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAccessDenied means the credentials are missing, wrong or not allowed.
	ErrAccessDenied = errors.New("access denied")
	// ErrChanged means the object is no longer the version that was read.
	ErrChanged = errors.New("object changed")
	// ErrInvalidConfig means the source settings cannot work as given.
	ErrInvalidConfig = errors.New("invalid source config")
	// ErrAddressDenied means the source's host resolved to a network the
	// platform denies (Guard.Denied).
	ErrAddressDenied = errors.New("address denied")
	// ErrInsecureDenied means the source asked for plain HTTP, which the
	// platform has not allowed, or a redirect went from https to http.
	ErrInsecureDenied = errors.New("plain HTTP denied")
	// ErrTooLarge means the object is larger than the platform accepts.
	ErrTooLarge = errors.New("object too large")
	// ErrTooSlow means a read idled or dripped below the minimum rate; it
	// is transient.
	ErrTooSlow = errors.New("source too slow")
)

// isTerminal reports whether retrying err cannot help until something
// changes: the spec, the credentials or the object. Other errors are
// transient. Callers tell the errors apart themselves (each has its own
// reason); the tests hold every error to this classification.
func isTerminal(err error) bool {
	for _, terminal := range []error{ErrNotFound, ErrAccessDenied, ErrChanged, ErrInvalidConfig, ErrAddressDenied, ErrInsecureDenied, ErrTooLarge} {
		if errors.Is(err, terminal) {
			return true
		}
	}
	return false
}

// remote bounds text a storage server sent before it enters an error
// message (and so a condition or an event).
func remote(s string) string { return bound.Text(strings.ToValidUTF8(s, "?"), bound.Remote) }

// httpStatusKind maps an HTTP error status to a terminal sentinel; nil means
// transient (5xx, 408, 429, …). pinned tells that a version was asked for, so
// a missing object means it changed.
func httpStatusKind(status int, pinned bool) error {
	switch status {
	case http.StatusNotFound, http.StatusGone:
		if pinned {
			return ErrChanged
		}
		return ErrNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrAccessDenied
	case http.StatusPreconditionFailed, http.StatusRequestedRangeNotSatisfiable:
		return ErrChanged
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return nil
	}
	if status >= 300 && status < 500 {
		return ErrInvalidConfig
	}
	return nil
}

// transportError wraps an error from sending a request. It keeps the cause
// of a *url.Error but not its URL, which may carry a query string or
// userinfo. A certificate that does not verify is a configuration problem
// (CA bundle, endpoint); other failures are transient.
func transportError(op, name string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return fmt.Errorf("%s %s: %w: %w", op, name, ErrInvalidConfig, err)
	}
	return fmt.Errorf("%s %s: %w", op, name, err)
}

// redactURL returns rawURL as scheme://host/path, without the userinfo and
// query string that may hold secrets.
func redactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<unparsable URL>"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
