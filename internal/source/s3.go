package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config locates one object in an S3-compatible store: AWS S3, MinIO,
// Tencent COS, Aliyun OSS, …
type S3Config struct {
	// Endpoint is host[:port], without scheme.
	Endpoint string
	Bucket   string
	Key      string
	// VersionID, when set, reads this version of the object in a versioned
	// bucket rather than the current one: a file pinned by its version (a
	// base of excludeMembersOf) stays readable after the key is overwritten.
	VersionID string
	// Region is optional; the store is asked when it is empty.
	Region string
	// BucketLookup is "auto" (the default when empty), "path" or "dns".
	// Aliyun OSS and Tencent COS need "dns".
	BucketLookup string
	// Insecure talks plain HTTP, e.g. to an in-cluster MinIO.
	Insecure bool
	// Anonymous sends unsigned requests when there is no AccessKey instead
	// of asking the environment and IAM, which are the operator's own identity.
	Anonymous bool
	// AccessKey, SecretKey and the optional SessionToken are static
	// credentials. Without AccessKey the environment (AWS_* and MINIO_*
	// variables) and then IAM are asked, which covers EC2 instance roles, ECS
	// and IRSA (AWS_WEB_IDENTITY_TOKEN_FILE).
	AccessKey    string
	SecretKey    string
	SessionToken string
	// CABundle holds PEM certificates trusted in addition to the system roots.
	CABundle []byte
	// Transport is an optional base transport shared between sources; it
	// must come from NewTransport(Guard).
	Transport http.RoundTripper
	// Guard is the platform's policy; nil checks nothing.
	Guard *Guard
}

// maxS3Retries bounds minio-go's own retries of transient failures: the
// reconciler backs off and retries too, so a dead endpoint must fail fast.
const maxS3Retries = 3

type s3Source struct {
	client *minio.Core
	bucket string
	key    string
	// versionID is the pinned version read, or empty for the current one.
	versionID string
	name      string // s3://bucket/key, for messages
	host      string // the endpoint's host as the spec wrote it, for messages
	guard     *Guard
	// regionKey names the bucket in regions when the spec names no region.
	regionKey string
}

// NewS3 returns a Source for the object cfg locates. It does no I/O.
func NewS3(cfg S3Config) (Source, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	lookup, err := bucketLookup(cfg.BucketLookup)
	if err != nil {
		return nil, err
	}
	if cfg.Insecure && cfg.Guard != nil && !cfg.Guard.AllowInsecure {
		return nil, insecureDenied("s3://"+cfg.Bucket+"/"+cfg.Key, "insecure asks for plain http")
	}
	transport, err := newTransport(cfg.Transport, cfg.CABundle, cfg.Guard)
	if err != nil {
		return nil, err
	}
	region, regionKey := cfg.Region, ""
	if region == "" {
		regionKey = cfg.Endpoint + "\x00" + cfg.Bucket + "\x00" + cfg.BucketLookup
		region = knownRegion(regionKey)
	}
	client, err := minio.NewCore(cfg.Endpoint, &minio.Options{
		Creds:        cfg.credentials(),
		Secure:       !cfg.Insecure,
		Transport:    transport,
		Region:       region,
		BucketLookup: lookup,
		MaxRetries:   maxS3Retries,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: endpoint %q: %v", ErrInvalidConfig, cfg.Endpoint, err)
	}
	return &s3Source{
		client:    client,
		bucket:    cfg.Bucket,
		key:       cfg.Key,
		versionID: cfg.VersionID,
		name:      "s3://" + cfg.Bucket + "/" + cfg.Key,
		host:      endpointHost(cfg.Endpoint),
		guard:     cfg.Guard,
		regionKey: regionKey,
	}, nil
}

// regions remembers the region of each bucket whose spec names none, as
// the store answered it for a request that then succeeded. A client is made
// for every check of a sync; without this, each would ask the store for
// the bucket's location before its one stat, two requests where one does.
var regions sync.Map // endpoint, bucket and lookup → region

func knownRegion(key string) string {
	if region, ok := regions.Load(key); ok {
		return region.(string)
	}
	return ""
}

// rememberRegion keeps the region the client used for a request that
// succeeded; the client has it cached, so this asks the store nothing.
func (s *s3Source) rememberRegion(ctx context.Context) {
	if s.regionKey == "" {
		return
	}
	if region, err := s.client.GetBucketLocation(ctx, s.bucket); err == nil && region != "" {
		regions.Store(s.regionKey, region)
	}
}

// forgetRegion drops the remembered region after a failed request: the
// next client asks the store again, in case the bucket moved.
func (s *s3Source) forgetRegion() {
	if s.regionKey != "" {
		regions.Delete(s.regionKey)
	}
}

func (c S3Config) validate() error {
	if c.Endpoint == "" || c.Bucket == "" || c.Key == "" {
		return fmt.Errorf("%w: s3 source needs an endpoint, a bucket and a key", ErrInvalidConfig)
	}
	if strings.Contains(c.Endpoint, "://") {
		return fmt.Errorf("%w: endpoint %q must be host[:port] without a scheme (insecure selects plain http)",
			ErrInvalidConfig, c.Endpoint)
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return fmt.Errorf("%w: s3 credentials need both an access key and a secret key", ErrInvalidConfig)
	}
	return nil
}

func (c S3Config) credentials() *credentials.Credentials {
	if c.AccessKey != "" {
		return credentials.NewStaticV4(c.AccessKey, c.SecretKey, c.SessionToken)
	}
	if c.Anonymous {
		return credentials.NewStaticV4("", "", "") // no keys: unsigned requests
	}
	return credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.EnvMinio{},
		&credentials.IAM{},
	})
}

func bucketLookup(name string) (minio.BucketLookupType, error) {
	switch name {
	case "", "auto":
		return minio.BucketLookupAuto, nil
	case "path":
		return minio.BucketLookupPath, nil
	case "dns":
		return minio.BucketLookupDNS, nil
	}
	return 0, fmt.Errorf("%w: bucket lookup %q, want auto, path or dns", ErrInvalidConfig, name)
}

// Open streams the current version of the object, pinned by the ETag (and
// version ID) of the response that carries its bytes.
func (s *s3Source) Open(ctx context.Context) (io.ReadCloser, Version, error) {
	body, info, _, err := s.client.GetObject(ctx, s.bucket, s.key, minio.GetObjectOptions{VersionID: s.versionID})
	if err != nil {
		return nil, Version{}, s.classify("get", err, s.versionID != "")
	}
	v := Version{Size: info.Size, ETag: info.ETag, VersionID: versionID(info.VersionID)}
	if v.ETag == "" || v.Size < 0 {
		body.Close()
		return nil, Version{}, fmt.Errorf("%w: get %s: the store sent no ETag or no Content-Length, so the object cannot be pinned",
			ErrInvalidConfig, s.name)
	}
	if err := s.guard.checkSize(s.name, v.Size); err != nil {
		body.Close()
		return nil, Version{}, err
	}
	return s.guard.watch(body, s.name, v.Size), v, nil
}

// OpenRange reads the current object with If-Match on v's ETag. It does not
// read v by its version ID: an overwritten object must fail with ErrChanged
// even in a versioned bucket, or the upload would silently send a file that is
// no longer the one at the key. A source made with a VersionID reads that
// version, which the configuration itself pins.
func (s *s3Source) OpenRange(ctx context.Context, v Version, offset, length int64) (io.ReadCloser, error) {
	if err := checkRange(v, offset, length); err != nil {
		return nil, err
	}
	opts := minio.GetObjectOptions{VersionID: s.versionID}
	if err := opts.SetRange(offset, offset+length-1); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if err := opts.SetMatchETag(v.ETag); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	body, info, _, err := s.client.GetObject(ctx, s.bucket, s.key, opts)
	if err != nil {
		return nil, s.classify("get range", err, true)
	}
	if got := versionID(info.VersionID); got != v.VersionID {
		body.Close()
		return nil, fmt.Errorf("get range %s: %w: version %q is now %q", s.name, ErrChanged, remote(v.VersionID), remote(got))
	}
	if info.Size != length {
		body.Close()
		return nil, fmt.Errorf("get range %s: the store sent %d bytes for a %d byte range", s.name, info.Size, length)
	}
	return s.guard.watch(body, s.name, length), nil
}

// versionID drops the "null" version ID stores report for unversioned objects.
func versionID(id string) string {
	if id == "null" {
		return ""
	}
	return id
}

// classify wraps err with the sentinel its S3 error code maps to. pinned
// tells that a version was asked for, so a missing object means it changed.
func (s *s3Source) classify(op string, err error, pinned bool) error {
	var resp minio.ErrorResponse
	switch {
	case errors.Is(err, ErrAddressDenied):
		return addressDenied(op, s.name, s.host, false)
	case !errors.As(err, &resp):
		return transportError(op, s.name, err)
	}
	kind := s3ErrorKind(resp.Code, resp.StatusCode, pinned)
	said := remote(resp.Message)
	if said == "" {
		said = remote(err.Error())
	}
	if kind == nil {
		return fmt.Errorf("%s %s: %s (%s, HTTP %d)", op, s.name, said, remote(resp.Code), resp.StatusCode)
	}
	return fmt.Errorf("%s %s: %w: %s (%s, HTTP %d)", op, s.name, kind, said, remote(resp.Code), resp.StatusCode)
}

// s3ErrorKind maps an S3 error code, or failing that its HTTP status, to a
// terminal sentinel; nil means transient.
func s3ErrorKind(code string, status int, pinned bool) error {
	switch code {
	case "NoSuchBucket":
		return ErrNotFound
	case "NoSuchKey":
		if pinned {
			return ErrChanged
		}
		return ErrNotFound
	case "NoSuchVersion", "PreconditionFailed", "InvalidRange":
		return ErrChanged
	case "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "InvalidTokenId",
		"ExpiredToken", "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem",
		"XMinioInvalidToken":
		return ErrAccessDenied
	case "InvalidBucketName", "XMinioInvalidObjectName", "AuthorizationHeaderMalformed",
		"PermanentRedirect", "InvalidRegion":
		return ErrInvalidConfig
	case "RequestTimeout", "SlowDown", "InternalError", "ServiceUnavailable":
		return nil
	}
	return httpStatusKind(status, pinned)
}

// endpointHost is the host of a host[:port] endpoint.
func endpointHost(endpoint string) string {
	if host, _, err := net.SplitHostPort(endpoint); err == nil {
		return host
	}
	return endpoint
}
