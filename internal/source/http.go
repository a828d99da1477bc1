package source

import (
	"context"
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
	// Transport is an optional base transport shared between sources.
	Transport http.RoundTripper
}

type httpSource struct {
	client *http.Client
	url    string
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
	case u.Scheme == "http" && !cfg.Insecure:
		return nil, fmt.Errorf("%w: %s is plain http; set insecure to allow it", ErrInvalidConfig, name)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return nil, fmt.Errorf("%w: %s is not an http(s) URL", ErrInvalidConfig, name)
	case cfg.BearerToken != "" && (cfg.Username != "" || cfg.Password != ""):
		return nil, fmt.Errorf("%w: %s: give a bearer token or a username and password, not both", ErrInvalidConfig, name)
	}
	transport, err := newTransport(cfg.Transport, cfg.CABundle)
	if err != nil {
		return nil, err
	}
	return &httpSource{client: &http.Client{Transport: transport}, url: cfg.URL, name: name, cfg: cfg}, nil
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
	if err != nil {
		resp.Body.Close()
		return nil, Version{}, err
	}
	return resp.Body, v, nil
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
	switch resp.StatusCode {
	case http.StatusPartialContent:
		return s.checkPartial(resp, offset, length)
	case http.StatusOK:
		return s.checkWhole(resp, v, offset, length)
	}
	return nil, s.statusError(resp, true)
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
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
		return nil, transportError("get", s.name, err)
	}
	return resp, nil
}

// statusError classifies an unexpected status and closes the body.
func (s *httpSource) statusError(resp *http.Response, pinned bool) error {
	resp.Body.Close()
	if kind := httpStatusKind(resp.StatusCode, pinned); kind != nil {
		return fmt.Errorf("get %s: %w: HTTP %s", s.name, kind, remote(resp.Status))
	}
	return fmt.Errorf("get %s: HTTP %s", s.name, remote(resp.Status))
}
