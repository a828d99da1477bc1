package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// Keys of the Secrets a UserPackageUpload refers to.
const (
	keyAccessKey    = "accesskey"
	keySecretKey    = "secretkey"
	keySessionToken = "sessiontoken"
	keyCACert       = "ca.crt"
	keyToken        = "token"
	keyUsername     = "username"
	keyPassword     = "password"
)

// getFromServer reads obj from the API server's watch cache (resource
// version "0"), never the manager's: live — the API server's cache follows
// etcd within moments and feeds the manager's informers, so it is never
// behind the change that triggered a reconcile — without a quorum read of
// etcd on every reconcile.
func getFromServer(ctx context.Context, reader client.Reader, key client.ObjectKey, obj client.Object) error {
	return reader.Get(ctx, key, obj, &client.GetOptions{Raw: &metav1.GetOptions{ResourceVersion: "0"}})
}

// readSecret reads a Secret of the object's namespace from the API server
// (never a cache: Secrets are not cached cluster-wide). field names the spec
// field that refers to it, for the message a missing one gives.
func (r *UserPackageUploadReconciler) readSecret(ctx context.Context, u *upv1.UserPackageUpload, name, field string) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	err := getFromServer(ctx, r.APIReader, client.ObjectKey{Namespace: u.Namespace, Name: name}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return nil, stall(upv1.ReasonSecretNotFound, "Secret %s/%s named by %s not found; create it", u.Namespace, name, field)
	case err != nil:
		return nil, retry(upv1.ReasonAPIServerUnavailable, 0, "read Secret %s named by %s: %v; retrying", name, field, err)
	}
	return secret, nil
}

// secretValue is one key of a Secret; a missing required key stalls.
func secretValue(s *corev1.Secret, key, field string, required bool) ([]byte, error) {
	v, ok := s.Data[key]
	if !ok && required {
		return nil, stall(upv1.ReasonInvalidCredentials, "Secret %s named by %s has no key %q; add it", s.Name, field, key)
	}
	return v, nil
}

// caBundle reads ca.crt from the Secret ref names, if any.
func (r *UserPackageUploadReconciler) caBundle(ctx context.Context, u *upv1.UserPackageUpload, ref *upv1.SecretReference, field string) ([]byte, error) {
	if ref == nil {
		return nil, nil
	}
	s, err := r.readSecret(ctx, u, ref.Name, field)
	if err != nil {
		return nil, err
	}
	return secretValue(s, keyCACert, field, true)
}

// openSource returns the object storage the spec points at, with its
// credentials read live.
func (r *UserPackageUploadReconciler) openSource(ctx context.Context, u *upv1.UserPackageUpload) (source.Source, error) {
	var src source.Source
	var err error
	switch spec := u.Spec.Source; {
	case spec.S3 != nil:
		src, err = r.openS3(ctx, u, spec.S3)
	case spec.HTTP != nil:
		src, err = r.openHTTP(ctx, u, spec.HTTP)
	default:
		return nil, stall(upv1.ReasonInvalidSpec, "spec.source names no source kind; set s3 or http")
	}
	if err != nil && !isClassified(err) {
		return nil, sourceError(err)
	}
	return src, err
}

func (r *UserPackageUploadReconciler) openS3(ctx context.Context, u *upv1.UserPackageUpload, s3 *upv1.S3Source) (source.Source, error) {
	cfg := source.S3Config{
		Endpoint:     s3.Endpoint,
		Bucket:       s3.Bucket,
		Key:          s3.Key,
		Region:       s3.Region,
		BucketLookup: string(s3.BucketLookup),
		Insecure:     s3.Insecure,
		Transport:    r.StorageTransport,
		Guard:        r.SourceGuard,
	}
	switch {
	case s3.SecretRef == nil && s3.Provider != upv1.S3ProviderAWS:
		cfg.Anonymous = true // never the operator's own identity unasked
	case s3.SecretRef == nil && !r.AllowAmbientCredentials:
		return nil, stall(upv1.ReasonAmbientCredentialsDenied,
			"spec.source.s3.provider aws asks for the operator's own cloud identity, which this operator does not lend (it runs without --allow-ambient-credentials); set spec.source.s3.secretRef, or ask the platform team")
	}
	if ref := s3.SecretRef; ref != nil {
		const field = "spec.source.s3.secretRef"
		secret, err := r.readSecret(ctx, u, ref.Name, field)
		if err != nil {
			return nil, err
		}
		access, err := secretValue(secret, keyAccessKey, field, true)
		if err != nil {
			return nil, err
		}
		key, err := secretValue(secret, keySecretKey, field, true)
		if err != nil {
			return nil, err
		}
		token, _ := secretValue(secret, keySessionToken, field, false)
		cfg.AccessKey, cfg.SecretKey, cfg.SessionToken = string(access), string(key), string(token)
	}
	ca, err := r.caBundle(ctx, u, s3.CertSecretRef, "spec.source.s3.certSecretRef")
	if err != nil {
		return nil, err
	}
	cfg.CABundle = ca
	return source.NewS3(cfg)
}

func (r *UserPackageUploadReconciler) openHTTP(ctx context.Context, u *upv1.UserPackageUpload, h *upv1.HTTPSource) (source.Source, error) {
	cfg := source.HTTPConfig{URL: h.URL, Insecure: h.Insecure, Transport: r.StorageTransport, Guard: r.SourceGuard}
	if ref := h.SecretRef; ref != nil {
		const field = "spec.source.http.secretRef"
		secret, err := r.readSecret(ctx, u, ref.Name, field)
		if err != nil {
			return nil, err
		}
		token, _ := secretValue(secret, keyToken, field, false)
		user, _ := secretValue(secret, keyUsername, field, false)
		password, _ := secretValue(secret, keyPassword, field, false)
		if len(token) == 0 && len(user) == 0 {
			return nil, stall(upv1.ReasonInvalidCredentials, "Secret %s named by %s has neither %q nor %q; add one", ref.Name, field, keyToken, keyUsername)
		}
		cfg.BearerToken, cfg.Username, cfg.Password = string(token), string(user), string(password)
	}
	ca, err := r.caBundle(ctx, u, h.CertSecretRef, "spec.source.http.certSecretRef")
	if err != nil {
		return nil, err
	}
	cfg.CABundle = ca
	return source.NewHTTP(cfg)
}

// weChatPay returns a brand API client with the credentials of the Secret
// spec.credentialsRef names, or of the WeChatPayBrand spec.brandRef names,
// read live, and the brand they are of.
func (r *UserPackageUploadReconciler) weChatPay(ctx context.Context, u *upv1.UserPackageUpload) (wechatpay.API, string, error) {
	if u.Spec.BrandRef != nil {
		return r.brandClient(ctx, u)
	}
	if u.Spec.CredentialsRef == nil {
		return nil, "", stall(upv1.ReasonInvalidSpec, "spec names neither brandRef nor credentialsRef; set one")
	}
	const field = "spec.credentialsRef"
	secret, err := r.readSecret(ctx, u, u.Spec.CredentialsRef.Name, field)
	if err != nil {
		return nil, "", err
	}
	creds, err := wechatpay.CredentialsFromSecretData(secret.Data)
	if err != nil {
		return nil, "", stall(upv1.ReasonInvalidCredentials, "Secret %s named by %s: %v; fix it", secret.Name, field, err)
	}
	client, err := r.NewWeChatPay(creds)
	if err != nil {
		return nil, "", stall(upv1.ReasonInvalidCredentials, "Secret %s named by %s: %v; fix it", secret.Name, field, err)
	}
	return client, creds.BrandID, nil
}

// secretNames lists the Secrets an object refers to, for the watch that
// re-triggers it when one of them changes.
func secretNames(u *upv1.UserPackageUpload) []string {
	var names []string
	add := func(ref *upv1.SecretReference) {
		if ref != nil {
			names = append(names, ref.Name)
		}
	}
	add(u.Spec.CredentialsRef)
	if s3 := u.Spec.Source.S3; s3 != nil {
		add(s3.SecretRef)
		add(s3.CertSecretRef)
	}
	if h := u.Spec.Source.HTTP; h != nil {
		add(h.SecretRef)
		add(h.CertSecretRef)
	}
	return names
}
