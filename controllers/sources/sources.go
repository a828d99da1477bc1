// Package sources opens the object storage a UserPackageUpload's spec
// points at, with the credentials of its own namespace's Secrets read live,
// and never lends the operator's own cloud identity unasked.
package sources

import (
	"cmp"
	"context"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/classify"
	"github.com/crowdpack/crowdpack/controllers/secrets"
	"github.com/crowdpack/crowdpack/internal/source"
)

// Opener opens sources on the platform's terms.
type Opener struct {
	// Reader reads Secrets from the API server, never a cache.
	Reader client.Reader
	// Transport is shared by every object-storage client, for keep-alive;
	// it must come from source.NewTransport(Guard), or dials go unchecked.
	Transport http.RoundTripper
	// Guard is what a tenant's source may make the manager do.
	Guard *source.Guard
	// AllowAmbientCredentials lends the operator's own identity to s3
	// sources that ask for it (provider aws without a secretRef).
	AllowAmbientCredentials bool
}

// readSecret reads a Secret of the object's namespace; field names the spec
// field that refers to it.
func readSecret(ctx context.Context, reader client.Reader, ns, name, field string) (*corev1.Secret, error) {
	return secrets.Read(ctx, reader, client.ObjectKey{Namespace: ns, Name: name}, field)
}

// caBundle reads ca.crt from the Secret ref names, if any.
func (o *Opener) caBundle(ctx context.Context, ns string, ref *upv1.SecretReference, field string) ([]byte, error) {
	if ref == nil {
		return nil, nil
	}
	s, err := readSecret(ctx, o.Reader, ns, ref.Name, field)
	if err != nil {
		return nil, err
	}
	return secrets.Value(s, secrets.KeyCACert, field, true)
}

// Open returns the object storage the spec points at, with its
// credentials read live.
func (o *Opener) Open(ctx context.Context, u *upv1.UserPackageUpload) (source.Source, error) {
	return o.open(ctx, u, u.Spec.Source, "", "spec.source")
}

// OpenBase returns the object storage of spec.file.excludeMembersOf, pinned
// to its versionID if it has one, with its credentials read live.
func (o *Opener) OpenBase(ctx context.Context, u *upv1.UserPackageUpload) (source.Source, error) {
	base := u.Spec.File.ExcludeMembersOf
	if base == nil {
		return nil, classify.Stall(upv1.ReasonInvalidSpec, "spec.file.excludeMembersOf is not set")
	}
	return o.open(ctx, u, base.Source, base.VersionID, "spec.file.excludeMembersOf")
}

// open returns the object storage of spec, the source at field of u, with
// an S3 object read at versionID if it is set.
func (o *Opener) open(ctx context.Context, u *upv1.UserPackageUpload, spec upv1.Source, versionID, field string) (source.Source, error) {
	var src source.Source
	var err error
	switch {
	case spec.S3 != nil:
		cfg, cfgErr := o.s3Config(ctx, u.Namespace, spec.S3, field)
		cfg.VersionID = versionID
		src, err = made(source.NewS3)(cfg, cfgErr)
	case spec.HTTP != nil:
		src, err = made(source.NewHTTP)(o.httpConfig(ctx, u.Namespace, spec.HTTP, field))
	default:
		return nil, classify.Stall(upv1.ReasonInvalidSpec, "%s names no source kind; set s3 or http", field)
	}
	if err != nil && !classify.IsClassified(err) {
		return nil, classify.Source(err)
	}
	return src, err
}

// made makes a source with newSource from a config, unless reading the
// config failed.
func made[C any](newSource func(C) (source.Source, error)) func(C, error) (source.Source, error) {
	return func(cfg C, err error) (source.Source, error) {
		if err != nil {
			return nil, err
		}
		return newSource(cfg)
	}
}

// Revisions returns what finds the revisions of a sync's export, with the
// credentials and CA bundle of namespace ns read live.
func (o *Opener) Revisions(ctx context.Context, ns string, spec *upv1.SyncSource) (source.Revisions, error) {
	var revisions source.Revisions
	var err error
	switch {
	case spec.S3 != nil:
		s3 := spec.S3.S3Source
		s3.Key = cmp.Or(s3.Key, spec.S3.Prefix)
		cfg, cfgErr := o.s3Config(ctx, ns, &s3, "spec.source")
		if cfgErr != nil {
			return nil, cfgErr
		}
		revisions, err = source.NewS3Revisions(cfg, spec.S3.Prefix != "")
	case spec.HTTP != nil:
		cfg, cfgErr := o.httpConfig(ctx, ns, spec.HTTP, "spec.source")
		if cfgErr != nil {
			return nil, cfgErr
		}
		revisions, err = source.NewHTTPRevisions(cfg)
	default:
		return nil, classify.Stall(upv1.ReasonInvalidSpec, "spec.source names no source kind; set s3 or http")
	}
	if err != nil {
		return nil, classify.Source(err)
	}
	return revisions, nil
}

// s3Config is the configuration of an s3 source, with its credentials and
// CA bundle read live.
func (o *Opener) s3Config(ctx context.Context, ns string, s3 *upv1.S3Source, field string) (source.S3Config, error) {
	cfg := source.S3Config{
		Endpoint:     s3.Endpoint,
		Bucket:       s3.Bucket,
		Key:          s3.Key,
		Region:       s3.Region,
		BucketLookup: string(s3.BucketLookup),
		Insecure:     s3.Insecure,
		Transport:    o.Transport,
		Guard:        o.Guard,
	}
	err := o.s3Credentials(ctx, ns, s3, &cfg, field+".s3")
	if err == nil {
		cfg.CABundle, err = o.caBundle(ctx, ns, s3.CertSecretRef, field+".s3.certSecretRef")
	}
	return cfg, err
}

// s3Credentials puts the keys of spec.source.s3.secretRef into cfg, or
// makes cfg anonymous: the operator's own identity only when both the
// spec (provider aws) and the platform (AllowAmbientCredentials) ask.
func (o *Opener) s3Credentials(ctx context.Context, ns string, s3 *upv1.S3Source, cfg *source.S3Config, field string) error {
	switch {
	case s3.SecretRef == nil && s3.Provider != upv1.S3ProviderAWS:
		cfg.Anonymous = true // never the operator's own identity unasked
		return nil
	case s3.SecretRef == nil && !o.AllowAmbientCredentials:
		return classify.Stall(upv1.ReasonAmbientCredentialsDenied,
			"%[1]s.provider aws asks for the operator's own cloud identity, which this operator does not lend (it runs without --allow-ambient-credentials); set %[1]s.secretRef, or ask the platform team", field)
	case s3.SecretRef == nil:
		return nil
	}
	field += ".secretRef"
	secret, err := readSecret(ctx, o.Reader, ns, s3.SecretRef.Name, field)
	if err != nil {
		return err
	}
	access, err := secrets.Value(secret, secrets.KeyAccessKey, field, true)
	if err != nil {
		return err
	}
	key, err := secrets.Value(secret, secrets.KeySecretKey, field, true)
	if err != nil {
		return err
	}
	token, _ := secrets.Value(secret, secrets.KeySessionToken, field, false)
	cfg.AccessKey, cfg.SecretKey, cfg.SessionToken = string(access), string(key), string(token)
	return nil
}

// httpConfig is the configuration of an http source, with its
// credentials and CA bundle read live.
func (o *Opener) httpConfig(ctx context.Context, ns string, h *upv1.HTTPSource, field string) (source.HTTPConfig, error) {
	cfg := source.HTTPConfig{URL: h.URL, Insecure: h.Insecure, Transport: o.Transport, Guard: o.Guard}
	err := o.httpCredentials(ctx, ns, h, &cfg, field+".http.secretRef")
	if err == nil {
		cfg.CABundle, err = o.caBundle(ctx, ns, h.CertSecretRef, field+".http.certSecretRef")
	}
	return cfg, err
}

// httpCredentials puts the bearer token or the basic credentials of
// spec.source.http.secretRef, if any, into cfg.
func (o *Opener) httpCredentials(ctx context.Context, ns string, h *upv1.HTTPSource, cfg *source.HTTPConfig, field string) error {
	ref := h.SecretRef
	if ref == nil {
		return nil
	}
	secret, err := readSecret(ctx, o.Reader, ns, ref.Name, field)
	if err != nil {
		return err
	}
	token, _ := secrets.Value(secret, secrets.KeyToken, field, false)
	user, _ := secrets.Value(secret, secrets.KeyUsername, field, false)
	password, _ := secrets.Value(secret, secrets.KeyPassword, field, false)
	if len(token) == 0 && len(user) == 0 {
		return classify.Stall(upv1.ReasonInvalidCredentials, "Secret %s named by %s has neither %q nor %q; add one", ref.Name, field, secrets.KeyToken, secrets.KeyUsername)
	}
	cfg.BearerToken, cfg.Username, cfg.Password = string(token), string(user), string(password)
	return nil
}
