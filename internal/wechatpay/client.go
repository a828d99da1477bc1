package wechatpay

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/crowdpack/crowdpack/internal/bound"
	"github.com/crowdpack/crowdpack/internal/certs"
	"github.com/crowdpack/crowdpack/internal/version"
)

// Hosts of the brand API.
const (
	DefaultBaseURL   = "https://api.mch.weixin.qq.com"
	DefaultBackupURL = "https://api2.mch.weixin.qq.com"
	DefaultTimeout   = 30 * time.Second
)

// maxResponseBytes bounds what is read of an answer; the API's answers are tiny.
const maxResponseBytes = 1 << 20

// Config tunes a Client. The zero value talks to WeChat Pay.
type Config struct {
	// BaseURL is scheme://host[:port] of the API; default DefaultBaseURL.
	BaseURL string
	// BackupURL is tried only when BaseURL could not be connected to at all
	// (DNS, dial, refused), never once a request may have reached a server.
	// It defaults to DefaultBackupURL only when BaseURL is DefaultBaseURL
	// (or empty), so a client aimed at a sandbox never fails over to
	// production.
	BackupURL string
	// HTTPClient is shared between Clients for keep-alive connection reuse;
	// build it once per CA bundle with NewHTTPClient. When nil, a client is
	// built from CABundle.
	HTTPClient *http.Client
	// CABundle is extra PEM roots trusted besides the system's; only used
	// when HTTPClient is nil.
	CABundle []byte
	// Timeout bounds each HTTP call, answer included; default DefaultTimeout.
	Timeout time.Duration
	// Now is the clock used for signing and verifying; default time.Now.
	Now func() time.Time
}

// Client calls the brand API for one brand. It is safe for concurrent use.
type Client struct {
	creds      *Credentials
	hosts      []string
	httpClient *http.Client
	timeout    time.Duration
	now        func() time.Time
}

// New returns a Client for creds.
func New(creds *Credentials, cfg Config) (*Client, error) {
	if creds == nil || creds.PrivateKey == nil || creds.PublicKey == nil {
		return nil, &CredentialsError{Reason: "credentials are incomplete"}
	}
	hosts, err := hostList(cfg.BaseURL, cfg.BackupURL)
	if err != nil {
		return nil, err
	}
	httpClient, err := sharedOrNew(cfg.HTTPClient, cfg.CABundle)
	if err != nil {
		return nil, err
	}
	c := &Client{creds: creds, hosts: hosts, httpClient: httpClient, timeout: cfg.Timeout, now: cfg.Now}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// NewHTTPClient returns a keep-alive HTTP client trusting the system roots
// plus the PEM certificates in caBundle (may be empty). Share it between
// Clients that use the same bundle.
func NewHTTPClient(caBundle []byte) (*http.Client, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if len(bytes.TrimSpace(caBundle)) > 0 {
		pool, err := certs.Pool(caBundle)
		if err != nil {
			return nil, err
		}
		transport.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: transport}, nil
}

// sharedOrNew copies a shared client (keeping its transport and so its
// connection pool) to switch redirects off: a redirected call could not carry
// a valid signature anyway.
func sharedOrNew(shared *http.Client, caBundle []byte) (*http.Client, error) {
	if shared != nil && len(caBundle) > 0 {
		return nil, errors.New("set either HTTPClient or CABundle, not both")
	}
	if shared == nil {
		var err error
		if shared, err = NewHTTPClient(caBundle); err != nil {
			return nil, err
		}
	}
	c := *shared
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c, nil
}

func hostList(base, backup string) ([]string, error) {
	if base == "" {
		base = DefaultBaseURL
	}
	if base == DefaultBaseURL && backup == "" {
		backup = DefaultBackupURL
	}
	var hosts []string
	for _, raw := range []string{base, backup} {
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
			return nil, fmt.Errorf("API URL %q: want scheme://host[:port] without path", raw)
		}
		hosts = append(hosts, u.Scheme+"://"+u.Host)
	}
	return hosts, nil
}

// call is one API operation, rebuilt for each attempt.
type call struct {
	op          string // names the operation in errors
	method      string
	path        string // escaped path, signed as sent
	signedBody  []byte // the BODY line: JSON body or multipart meta
	contentType string
	// body opens the bytes to send; nil sends signedBody (or nothing).
	body func() (io.ReadCloser, int64, error)
}

// answer is a fully read HTTP response.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends c, failing over to the backup host on connection errors, and
// returns the verified 2xx body.
func (cl *Client) do(ctx context.Context, c call) ([]byte, error) {
	var err error
	for _, host := range cl.hosts {
		var a *answer
		a, err = cl.attempt(ctx, host, c)
		if err != nil && ctx.Err() != nil { // the caller gave up: say so, not "retry"
			var transport *TransportError
			reached := errors.As(err, &transport) && transport.MayHaveReachedServer
			return nil, fmt.Errorf("%s: %w", c.op, &CanceledError{Err: ctx.Err(), MayHaveReachedServer: reached})
		}
		if err == nil {
			body, err := cl.check(a)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.op, err)
			}
			return body, nil
		}
		var transport *TransportError
		if !errors.As(err, &transport) || transport.MayHaveReachedServer || !isConnectError(err) {
			break
		}
	}
	return nil, fmt.Errorf("%s: %w", c.op, err)
}

// attempt sends c to one host under the per-call timeout.
func (cl *Client) attempt(ctx context.Context, host string, c call) (*answer, error) {
	ctx, cancel := context.WithTimeout(ctx, cl.timeout)
	defer cancel()
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }})
	req, err := cl.newRequest(ctx, host, c)
	if err != nil {
		return nil, err
	}
	resp, err := cl.httpClient.Do(req)
	if err != nil {
		return nil, &TransportError{MayHaveReachedServer: wrote.Load(), Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, &TransportError{MayHaveReachedServer: true, Err: fmt.Errorf("read answer: %w", err)}
	}
	if len(body) > maxResponseBytes {
		return nil, &TransportError{MayHaveReachedServer: true, Err: fmt.Errorf("answer larger than %d bytes", maxResponseBytes)}
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// newRequest builds and signs the HTTP request for one attempt.
func (cl *Client) newRequest(ctx context.Context, host string, c call) (*http.Request, error) {
	body, size, err := c.open()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, c.method, host+c.path, body)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.ContentLength = size
	authorization, err := cl.authorization(c.method, req.URL.RequestURI(), c.signedBody)
	if err != nil {
		req.Body.Close()
		return nil, err
	}
	req.Header.Set("Authorization", authorization)
	req.Header.Set("Accept", "application/json")
	// The User-Agent carries the stamped version (internal/version).
	req.Header.Set("User-Agent", "crowdpack/"+version.Version+" (+https://github.com/crowdpack/crowdpack)")
	req.Header.Set(HeaderSerial, cl.creds.PublicKeyID)
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	return req, nil
}

func (c call) open() (io.ReadCloser, int64, error) {
	if c.body != nil {
		return c.body()
	}
	if len(c.signedBody) == 0 {
		return nil, 0, nil
	}
	return io.NopCloser(bytes.NewReader(c.signedBody)), int64(len(c.signedBody)), nil
}

// authorization signs METHOD\nCANONICAL_URL\nTIMESTAMP\nNONCE\nBODY\n.
func (cl *Client) authorization(method, canonicalURL string, body []byte) (string, error) {
	nonce, err := NewNonce()
	if err != nil {
		return "", err
	}
	timestamp := strconv.FormatInt(cl.now().Unix(), 10)
	signature, err := Sign(cl.creds.PrivateKey, SignatureMessage(method, canonicalURL, timestamp, nonce, body))
	if err != nil {
		return "", err
	}
	return BuildAuthorization(AuthParams{
		BrandID: cl.creds.BrandID, NonceStr: nonce, Signature: signature,
		Timestamp: timestamp, SerialNo: cl.creds.CertificateSerialNo,
	}), nil
}

// check verifies a 2xx answer and turns anything else into an *APIError.
func (cl *Client) check(a *answer) ([]byte, error) {
	requestID := a.header.Get(HeaderRequestID)
	if a.status < 200 || a.status > 299 {
		return nil, cl.apiError(a)
	}
	if err := VerifyResponse(a.header, a.body, cl.creds.PublicKeyID, cl.creds.PublicKey, cl.now()); err != nil {
		var ve *VerificationError
		if errors.As(err, &ve) {
			ve.StatusCode, ve.RequestID = a.status, requestID
		}
		return nil, err
	}
	if a.status == http.StatusAccepted {
		return nil, cl.apiError(a)
	}
	return a.body, nil
}

func (cl *Client) apiError(a *answer) *APIError {
	var body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(a.body, &body) // a non-JSON error body still has a status
	return &APIError{
		StatusCode: a.status,
		Code:       shorten(body.Code, 64),
		Message:    shorten(body.Message, bound.Remote),
		RequestID:  shorten(a.header.Get(HeaderRequestID), 128),
		RetryAfter: parseRetryAfter(a.header.Get("Retry-After"), cl.now()),
	}
}

// shorten keeps error strings bounded (in bytes) and printable whatever the
// server sends.
func shorten(s string, maxBytes int) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return bound.Text(s, maxBytes)
}

// isConnectError is true for failures before any connection existed: DNS,
// dial, refused. Only then is the backup host tried.
func isConnectError(err error) bool {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr):
		return true
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return true
	default:
		return errors.Is(err, syscall.ECONNREFUSED)
	}
}
