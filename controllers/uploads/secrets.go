package uploads

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/classify"
	"github.com/crowdpack/crowdpack/controllers/secrets"
	"github.com/crowdpack/crowdpack/controllers/sources"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// openSource returns the object storage the spec points at, with its
// credentials read live.
func (r *Reconciler) openSource(ctx context.Context, u *upv1.UserPackageUpload) (source.Source, error) {
	return r.SourceOpener().Open(ctx, u)
}

// openBase returns the object storage of spec.file.excludeMembersOf, with
// its credentials read live.
func (r *Reconciler) openBase(ctx context.Context, u *upv1.UserPackageUpload) (source.Source, error) {
	return r.SourceOpener().OpenBase(ctx, u)
}

// SourceOpener opens sources on the platform's terms: the reconciler's
// transport, guard and credential rules, for the sync reconciler too.
func (r *Reconciler) SourceOpener() *sources.Opener {
	return &sources.Opener{Reader: r.APIReader, Transport: r.StorageTransport, Guard: r.SourceGuard, AllowAmbientCredentials: r.AllowAmbientCredentials}
}

// weChatPay returns a brand API client with the credentials of the Secret
// spec.credentialsRef names, or of the WeChatPayBrand spec.brandRef names,
// read live, and the brand they are of.
func (r *Reconciler) weChatPay(ctx context.Context, u *upv1.UserPackageUpload) (wechatpay.API, string, error) {
	if u.Spec.BrandRef != nil {
		return r.brandClient(ctx, u)
	}
	if u.Spec.CredentialsRef == nil {
		return nil, "", classify.Stall(upv1.ReasonInvalidSpec, "spec names neither brandRef nor credentialsRef; set one")
	}
	const field = "spec.credentialsRef"
	secret, err := secrets.Read(ctx, r.APIReader, client.ObjectKey{Namespace: u.Namespace, Name: u.Spec.CredentialsRef.Name}, field)
	if err != nil {
		return nil, "", err
	}
	creds, err := wechatpay.CredentialsFromSecretData(secret.Data)
	if err != nil {
		return nil, "", classify.Stall(upv1.ReasonInvalidCredentials, "Secret %s named by %s: %v; fix it", secret.Name, field, err)
	}
	client, err := r.NewWeChatPay(creds)
	if err != nil {
		return nil, "", classify.Stall(upv1.ReasonInvalidCredentials, "Secret %s named by %s: %v; fix it", secret.Name, field, err)
	}
	r.brands.remember(secret, creds.BrandID)
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
	addSource := func(s upv1.Source) {
		if s3 := s.S3; s3 != nil {
			add(s3.SecretRef)
			add(s3.CertSecretRef)
		}
		if h := s.HTTP; h != nil {
			add(h.SecretRef)
			add(h.CertSecretRef)
		}
	}
	addSource(u.Spec.Source)
	if base := u.Spec.File.ExcludeMembersOf; base != nil {
		addSource(base.Source)
	}
	return names
}
