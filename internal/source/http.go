package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// HTTPConfig locates a file served over HTTP(S), e.g. a presigned URL.
type HTTPConfig struct {
	// URL is the file's https:// address; its query string may hold a
	// presigned signature and never appears in errors.
	URL string
	// Insecure allows an http:// URL.
	Insecure bool
	// BearerToken, or Username and Password, authenticate the requests.
	BearerToken string
	Username    string
	Password    string
	// CABundle holds PEM certificates trusted in addition to the system roots.
	CABundle []byte
	// Transport is an optional base transport shared between sources; it
	// must come from NewTransport(Guard).
	Transport http.RoundTripper
	// Guard is the platform's policy; nil checks nothing.
	Guard *Guard
}

// maxRedirects bounds the redirects one request follows.
const maxRedirects = 5

type httpSource struct {
	client *http.Client
	url    string
	host   string // the host as the spec wrote it, for messages
	name   string // the URL without userinfo and query, for messages
	cfg    HTTPConfig
}

// NewHTTP returns a Source for the file at cfg.URL. It does no I/O.
func NewHTTP(cfg HTTPConfig) (Source, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: the URL does not parse", ErrInvalidConfig)
	}
	name := redactURL(cfg.URL)
	switch {
	case u.Scheme == "http" && cfg.Guard != nil && !cfg.Guard.AllowInsecure:
		return nil, insecureDenied(name, "the URL is plain http")
	case u.Scheme == "http" && !cfg.Insecure:
		return nil, fmt.Errorf("%w: %s is plain http; set insecure to allow it", ErrInvalidConfig, name)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return nil, fmt.Errorf("%w: %s is not an http(s) URL", ErrInvalidConfig, name)
	case cfg.BearerToken != "" && (cfg.Username != "" || cfg.Password != ""):
		return nil, fmt.Errorf("%w: %s: give a bearer token or a username and password, not both", ErrInvalidConfig, name)
	}
	transport, err := newTransport(cfg.Transport, cfg.CABundle, cfg.Guard)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: transport, CheckRedirect: checkRedirect}
	return &httpSource{client: client, url: cfg.URL, host: u.Hostname(), name: name, cfg: cfg}, nil
}

// checkRedirect follows at most maxRedirects redirects, never from https to
// http, and sends credentials only to the host they were given for. Each
// hop is dialled through the guard like the first request.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return fmt.Errorf("%w: more than %d redirects", ErrInvalidConfig, maxRedirects)
	}
	if via[len(via)-1].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("%w: a redirect from https to plain http is never followed", ErrInsecureDenied)
	}
	if req.URL.Host != via[0].URL.Host {
		req.Header.Del("Authorization")
	}
	return nil
}

// Open streams the file and pins it by its strong ETag, or by Last-Modified
// when it has none.
func (s *httpSource) Open(ctx context.Context) (io.ReadCloser, Version, error) {
	resp, err := s.get(ctx, nil)
	if err != nil {
		return nil, Version{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, Version{}, s.statusError(resp, false)
	}
	v, err := s.version(resp)
	if err == nil {
		err = s.cfg.Guard.checkSize(s.name, v.Size)
	}
	if err != nil {
		resp.Body.Close()
		return nil, Version{}, err
	}
	return s.cfg.Guard.watch(resp.Body, s.name, v.Size), v, nil
}

func (s *httpSource) version(resp *http.Response) (Version, error) {
	v := Version{Size: resp.ContentLength}
	if etag := resp.Header.Get("ETag"); etag != "" && !strings.HasPrefix(etag, "W/") {
		v.ETag = etag
	} else if modified, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		v.LastModified = modified
	}
	switch {
	case v.Size < 0:
		return Version{}, fmt.Errorf("%w: get %s: the server sent no Content-Length", ErrInvalidConfig, s.name)
	case v.ETag == "" && v.LastModified.IsZero():
		return Version{}, fmt.Errorf("%w: get %s: the server sent neither a strong ETag nor Last-Modified, so the file cannot be pinned",
			ErrInvalidConfig, s.name)
	}
	return v, nil
}

// OpenRange asks for the range on condition that the file still is v
// (If-Match, or If-Unmodified-Since without ETag).
func (s *httpSource) OpenRange(ctx context.Context, v Version, offset, length int64) (io.ReadCloser, error) {
	if err := checkRange(v, offset, length); err != nil {
		return nil, err
	}
	resp, err := s.get(ctx, func(h http.Header) {
		h.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-"+strconv.FormatInt(offset+length-1, 10))
		if v.ETag != "" {
			h.Set("If-Match", v.ETag)
		} else {
			h.Set("If-Unmodified-Since", v.LastModified.UTC().Format(http.TimeFormat))
		}
	})
	if err != nil {
		return nil, err
	}
	var body io.ReadCloser
	switch resp.StatusCode {
	case http.StatusPartialContent:
		body, err = s.checkPartial(resp, offset, length)
	case http.StatusOK:
		body, err = s.checkWhole(resp, v, offset, length)
	default:
		return nil, s.statusError(resp, true)
	}
	if err != nil {
		return nil, err
	}
	return s.cfg.Guard.watch(body, s.name, length), nil
}

// checkPartial accepts a 206 that holds exactly the range asked for.
func (s *httpSource) checkPartial(resp *http.Response, offset, length int64) (io.ReadCloser, error) {
	want := fmt.Sprintf("bytes %d-%d/", offset, offset+length-1)
	if got := resp.Header.Get("Content-Range"); !strings.HasPrefix(got, want) || resp.ContentLength != length {
		resp.Body.Close()
		return nil, fmt.Errorf("get range %s: the server sent range %q of %d bytes, want %s…",
			s.name, remote(got), resp.ContentLength, want)
	}
	return resp.Body, nil
}

// checkWhole handles a 200 to a ranged request: a server without range
// support sent the whole file. From offset 0 that file's first bytes will
// do if it still is v; from elsewhere the range cannot be served.
func (s *httpSource) checkWhole(resp *http.Response, v Version, offset, length int64) (io.ReadCloser, error) {
	got, err := s.version(resp)
	switch {
	case offset != 0:
		err = fmt.Errorf("get range %s: %w: the server sent the whole file, not bytes from %d", s.name, ErrChanged, offset)
	case err == nil && got != v:
		err = fmt.Errorf("get range %s: %w: the file is no longer the version read", s.name, ErrChanged)
	}
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	return limitedBody{io.LimitReader(resp.Body, length), resp.Body}, nil
}

type limitedBody struct {
	io.Reader
	io.Closer
}

// get sends a GET with the source's credentials and the headers set by
// setHeaders. The bytes must arrive as stored, so no compression is asked for.
func (s *httpSource) get(ctx context.Context, setHeaders func(http.Header)) (*http.Response, error) {
	return s.request(ctx, http.MethodGet, setHeaders)
}

// request sends a request of method with the source's credentials.
func (s *httpSource) request(ctx context.Context, method string, setHeaders func(http.Header)) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: get %s: cannot build the request", ErrInvalidConfig, s.name)
	}
	req.Header.Set("Accept-Encoding", "identity")
	switch {
	case s.cfg.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+s.cfg.BearerToken)
	case s.cfg.Username != "" || s.cfg.Password != "":
		req.SetBasicAuth(s.cfg.Username, s.cfg.Password)
	}
	if setHeaders != nil {
		setHeaders(req.Header)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, s.requestError(err)
	}
	return resp, nil
}

// requestError says why a request could not be sent; a refused address is
// named by the spec's host only.
func (s *httpSource) requestError(err error) error {
	if errors.Is(err, ErrAddressDenied) {
		var ue *url.Error
		redirected := errors.As(err, &ue) && hostOf(ue.URL) != hostOf(s.url)
		return addressDenied("get", s.name, s.host, redirected)
	}
	if errors.Is(err, ErrInsecureDenied) || errors.Is(err, ErrInvalidConfig) {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its URL is a redirect target, which may carry a query
		}
		return fmt.Errorf("get %s: %w", s.name, err)
	}
	return transportError("get", s.name, err)
}

// statusError classifies an unexpected status and closes the body.
func (s *httpSource) statusError(resp *http.Response, pinned bool) error {
	resp.Body.Close()
	if kind := httpStatusKind(resp.StatusCode, pinned); kind != nil {
		return fmt.Errorf("get %s: %w: HTTP %s", s.name, kind, remote(resp.Status))
	}
	return fmt.Errorf("get %s: HTTP %s", s.name, remote(resp.Status))
}

func hostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Host
}
