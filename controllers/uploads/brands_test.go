package uploads

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/secrets"
	"github.com/crowdpack/crowdpack/internal/sandbox"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// brandLabel is the namespace label the test brands select.
const brandLabel = "crowdpack.io/brand"

// tenants is a multi-team world: the operator's namespace holding the brand
// Secret, the harness's namespace (team) and another team's namespace.
type tenants struct {
	*harness
	operatorNS, otherNS string
	brand               string
}

// newTenants starts a manager watching the team namespaces and reading brand
// Secrets from its own, as a multi-team install does. No Secret with key
// material is left in any team namespace.
func newTenants(t *testing.T, tn tenancyOptions) *tenants {
	t.Helper()
	h := newHarness(t, harnessOptions{noManager: true})
	w := &tenants{harness: h, operatorNS: h.ns + "-operator", otherNS: h.ns + "-other", brand: "acme-" + h.ns}
	for _, ns := range []string{w.operatorNS, w.otherNS} {
		must(t, kube.Client.Create(h.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	}
	// The team's own copy of the brand keys goes: brands make it unneeded.
	must(t, kube.Client.Delete(h.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "wechatpay-brand", Namespace: h.ns}}))
	must(t, kube.Client.Create(h.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "storage", Namespace: w.otherNS},
		StringData: map[string]string{secrets.KeyAccessKey: storage.AccessKey, secrets.KeySecretKey: storage.SecretKey},
	}))
	tn.brandSecretNamespace = w.operatorNS
	if len(tn.watchNamespaces) == 0 {
		tn.watchNamespaces = []string{h.ns, w.otherNS}
	}
	h.tenancy = tn
	t.Cleanup(func() {
		_ = kube.Client.Delete(h.ctx, &upv1.WeChatPayBrand{ObjectMeta: metav1.ObjectMeta{Name: w.brand}})
	})
	return w
}

// brandSecret creates the brand's Secret in the operator's namespace.
func (w *tenants) brandSecret(data map[string][]byte) {
	w.t.Helper()
	must(w.t, kube.Client.Create(w.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "wechatpay-brand-" + w.brand, Namespace: w.operatorNS}, Data: data,
	}))
}

// createBrand creates the brand, allowing namespaces labelled with its name.
func (w *tenants) createBrand() {
	w.t.Helper()
	must(w.t, kube.Client.Create(w.ctx, &upv1.WeChatPayBrand{
		ObjectMeta: metav1.ObjectMeta{Name: w.brand},
		Spec: upv1.WeChatPayBrandSpec{
			CredentialsSecretRef: upv1.SecretReference{Name: "wechatpay-brand-" + w.brand},
			AllowedNamespaces: upv1.AllowedNamespaces{
				From:     upv1.NamespacesFromSelector,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{brandLabel: w.brand}},
			},
		},
	}))
}

// label sets the brand label on a namespace.
func (w *tenants) label(ns string) {
	w.t.Helper()
	n := &corev1.Namespace{}
	must(w.t, kube.Client.Get(w.ctx, client.ObjectKey{Name: ns}, n))
	n.Labels = map[string]string{brandLabel: w.brand}
	must(w.t, kube.Client.Update(w.ctx, n))
}

// upload creates an upload of vip.csv in ns that names the brand.
func (w *tenants) upload(ns, name string) {
	w.t.Helper()
	u := w.object(name, "vip.csv")
	u.Namespace = ns
	u.Spec.File.Filename = name + ".csv" // filenames are per brand, and both teams use one
	u.Spec.CredentialsRef = nil
	u.Spec.BrandRef = &upv1.BrandReference{Name: w.brand}
	must(w.t, kube.Client.Create(w.ctx, u))
}

// waitIn waits for an object of any namespace, as harness.waitFor does.
func (w *tenants) waitIn(ns, name, what string, ok func(*upv1.UserPackageUpload) bool) *upv1.UserPackageUpload {
	w.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		u := &upv1.UserPackageUpload{}
		must(w.t, kube.Client.Get(w.ctx, client.ObjectKey{Namespace: ns, Name: name}, u))
		if ok(u) {
			return u
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s/%s: not %s after 60s; status:\n%s", ns, name, what, describe(u))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *tenants) waitReadyIn(ns, name string) *upv1.UserPackageUpload {
	w.t.Helper()
	return w.waitIn(ns, name, "Ready", func(u *upv1.UserPackageUpload) bool {
		return conditionIs(u, upv1.ConditionReady, metav1.ConditionTrue) && u.Status.ObservedGeneration == u.Generation
	})
}

func (w *tenants) waitStalledIn(ns, name, reason string) *upv1.UserPackageUpload {
	w.t.Helper()
	return w.waitIn(ns, name, "Stalled/"+reason, func(u *upv1.UserPackageUpload) bool {
		c := findCondition(u, upv1.ConditionStalled)
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == reason
	})
}

// waitBrand waits until the brand's Ready condition has status and reason.
func (w *tenants) waitBrand(status metav1.ConditionStatus, reason string) *upv1.WeChatPayBrand {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b := &upv1.WeChatPayBrand{}
		must(w.t, kube.Client.Get(w.ctx, client.ObjectKey{Name: w.brand}, b))
		for _, c := range b.Status.Conditions {
			if c.Type == upv1.ConditionReady && c.Status == status && c.Reason == reason && c.ObservedGeneration == b.Generation {
				return b
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("WeChatPayBrand %s: Ready is not %s/%s after 30s: %+v", w.brand, status, reason, b.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// noKeyMaterialIn fails when a Secret of ns holds a brand's private key.
func (w *tenants) noKeyMaterialIn(ns string) {
	w.t.Helper()
	var secrets corev1.SecretList
	must(w.t, kube.Client.List(w.ctx, &secrets, client.InNamespace(ns)))
	for _, s := range secrets.Items {
		if _, ok := s.Data[wechatpay.SecretKeyPrivateKey]; ok {
			w.t.Errorf("Secret %s/%s holds %s: the team namespace must hold no key material", ns, s.Name, wechatpay.SecretKeyPrivateKey)
		}
	}
}

func TestABrandServesTheNamespacesItAllowsByLabel(t *testing.T) {
	w := newTenants(t, tenancyOptions{})
	w.put("vip.csv", phoneFile(0, 100))
	w.brandSecret(identity.SecretData())
	w.createBrand()
	w.label(w.ns)
	w.startManager(nil)

	b := w.waitBrand(metav1.ConditionTrue, upv1.ReasonSucceeded)
	if b.Status.BrandID != brandID || b.Status.CertificateSerialNo == "" || b.Status.PublicKeyID == "" {
		t.Errorf("brand status = %+v, want the brand id, certificate serial and public key id", b.Status)
	}
	raw, _ := json.Marshal(b.Status)
	if leak := findSecret(string(raw)); leak != "" {
		t.Errorf("the brand's status shows %s", leak)
	}

	w.upload(w.ns, "vip")
	u := w.waitReadyIn(w.ns, "vip")
	w.noKeyMaterialIn(w.ns)
	if firstUpload(u) == nil || firstUpload(u).ID == "" {
		t.Fatalf("Ready without an upload id: %s", describe(u))
	}

	w.upload(w.otherNS, "other")
	u = w.waitStalledIn(w.otherNS, "other", upv1.ReasonBrandNotAllowed)
	msg := findCondition(u, upv1.ConditionReady).Message
	for _, want := range []string{"WeChatPayBrand " + w.brand, "namespace " + w.otherNS, brandLabel + "=" + w.brand} {
		if !strings.Contains(msg, want) {
			t.Errorf("BrandNotAllowed message %q does not say %q", msg, want)
		}
	}
	initiates := len(w.sandbox.Records())

	// Labelling the namespace is all it takes: no edit of the upload.
	w.label(w.otherNS)
	u = w.waitReadyIn(w.otherNS, "other")
	if u.Generation != 1 {
		t.Errorf("the upload was edited (generation %d)", u.Generation)
	}
	if len(w.sandbox.Records()) <= initiates {
		t.Error("the sandbox saw no call for the newly allowed namespace")
	}
}

func TestBrandProblemsStallTheBrandAndTheUploadsNamingIt(t *testing.T) {
	malformed := identity.SecretData()
	malformed[wechatpay.SecretKeyPrivateKey] = []byte("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
	partial := identity.SecretData()
	delete(partial, wechatpay.SecretKeyPublicKey)
	tests := []struct {
		name     string
		secret   map[string][]byte // nil: no Secret
		reason   string
		wantText string
	}{
		{"a missing Secret stalls the brand and its uploads", nil, upv1.ReasonSecretNotFound, "named by spec.credentialsSecretRef not found; create it"},
		{"a malformed private key stalls the brand and its uploads", malformed, upv1.ReasonInvalidCredentials, "apiclient_key.pem: no PEM block found"},
		{"a missing key stalls the brand and its uploads", partial, upv1.ReasonInvalidCredentials, "wxp_pub.pem: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newTenants(t, tenancyOptions{})
			w.put("vip.csv", phoneFile(0, 100))
			if tt.secret != nil {
				w.brandSecret(tt.secret)
			}
			w.createBrand()
			w.label(w.ns)
			w.startManager(nil)

			b := w.waitBrand(metav1.ConditionFalse, tt.reason)
			var stalled *metav1.Condition
			for i, c := range b.Status.Conditions {
				if c.Type == upv1.ConditionStalled {
					stalled = &b.Status.Conditions[i]
				}
			}
			if stalled == nil || stalled.Status != metav1.ConditionTrue || !strings.Contains(stalled.Message, tt.wantText) {
				t.Errorf("brand Stalled = %+v, want True saying %q", stalled, tt.wantText)
			}
			if b.Status.BrandID != "" {
				t.Errorf("a stalled brand shows brand id %q", b.Status.BrandID)
			}

			w.upload(w.ns, "vip")
			u := w.waitStalledIn(w.ns, "vip", tt.reason)
			msg := findCondition(u, upv1.ConditionReady).Message
			if !strings.Contains(msg, "WeChatPayBrand "+w.brand) || !strings.Contains(msg, tt.wantText) {
				t.Errorf("upload message %q does not report the brand's problem %q", msg, tt.wantText)
			}

			// Fixing the brand's Secret re-triggers the brand and the upload.
			fixed := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "wechatpay-brand-" + w.brand, Namespace: w.operatorNS}}
			if tt.secret == nil {
				fixed.Data = identity.SecretData()
				must(t, kube.Client.Create(w.ctx, fixed))
			} else {
				must(t, kube.Client.Get(w.ctx, client.ObjectKeyFromObject(fixed), fixed))
				fixed.Data = identity.SecretData()
				must(t, kube.Client.Update(w.ctx, fixed))
			}
			w.waitBrand(metav1.ConditionTrue, upv1.ReasonSucceeded)
			w.waitReadyIn(w.ns, "vip")
		})
	}
}

func TestAnUploadNamingAMissingBrandGoesOnWhenTheBrandAppears(t *testing.T) {
	w := newTenants(t, tenancyOptions{})
	w.put("vip.csv", phoneFile(0, 100))
	w.brandSecret(identity.SecretData())
	w.label(w.ns)
	w.startManager(nil)

	w.upload(w.ns, "vip")
	u := w.waitStalledIn(w.ns, "vip", upv1.ReasonBrandNotFound)
	if msg := findCondition(u, upv1.ConditionReady).Message; !strings.Contains(msg, "WeChatPayBrand "+w.brand+" named by spec.brandRef not found") {
		t.Errorf("BrandNotFound message %q does not name the brand", msg)
	}
	w.createBrand()
	w.waitReadyIn(w.ns, "vip")
}

// TestAmbientCredentialsAreOptInTwice puts working storage credentials into
// the manager's own environment (as a cloud identity would be) and checks
// that an object gets them only when it asks (provider: aws) and the manager
// lends them (--allow-ambient-credentials).
func TestAmbientCredentialsAreOptInTwice(t *testing.T) {
	requireCluster(t)
	t.Setenv("AWS_ACCESS_KEY_ID", storage.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", storage.SecretKey)
	tests := []struct {
		name     string
		provider upv1.S3Provider
		allow    bool
		reason   string // empty: Ready
		wantText string
	}{
		{"without secretRef and provider the read is anonymous and refused", "", true, upv1.ReasonSourceAccessDenied, "access denied"},
		{"provider aws is refused without --allow-ambient-credentials", upv1.S3ProviderAWS, false, upv1.ReasonAmbientCredentialsDenied, "--allow-ambient-credentials"},
		{"provider aws with --allow-ambient-credentials uses the environment", upv1.S3ProviderAWS, true, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{tenancy: tenancyOptions{allowAmbientCredentials: tt.allow}})
			h.put("vip.csv", phoneFile(0, 100))
			u := h.object("vip", "vip.csv")
			u.Spec.Source.S3.SecretRef = nil
			u.Spec.Source.S3.Provider = tt.provider
			h.create(u)
			if tt.reason == "" {
				h.waitReady("vip")
				return
			}
			u = h.waitStalled("vip", tt.reason)
			if msg := findCondition(u, upv1.ConditionReady).Message; !strings.Contains(msg, tt.wantText) {
				t.Errorf("message %q does not say %q", msg, tt.wantText)
			}
		})
	}
}

func TestUploadAdmissionNeedsExactlyOneOfBrandRefAndCredentialsRef(t *testing.T) {
	h := newHarness(t, harnessOptions{noManager: true})
	both := h.object("both", "vip.csv")
	both.Spec.BrandRef = &upv1.BrandReference{Name: "acme"}
	neither := h.object("neither", "vip.csv")
	neither.Spec.CredentialsRef = nil
	for _, u := range []*upv1.UserPackageUpload{both, neither} {
		err := kube.Client.Create(h.ctx, u)
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "exactly one of brandRef") {
			t.Errorf("%s: got %v, want Invalid naming brandRef and credentialsRef", u.Name, err)
		}
	}
}

// An upload is keyed by the brand_id, not by where the keys come from:
// moving from a Secret of one's own to a brand of the same brand_id is no
// new upload.
func TestMovingToABrandOfTheSameBrandIDIsNoNewUpload(t *testing.T) {
	w := newTenants(t, tenancyOptions{})
	w.put("vip.csv", phoneFile(0, 100))
	w.secret("own-keys", identity.SecretData()) // the team's copy, before the platform's brand
	w.brandSecret(identity.SecretData())
	w.createBrand()
	w.label(w.ns)
	w.startManager(nil)

	u := w.object("vip", "vip.csv")
	u.Spec.CredentialsRef.Name = "own-keys"
	w.create(u)
	before := firstUpload(w.waitReady("vip")).ID
	initiates := w.sandbox.CountSucceeded(sandbox.EndpointInitiate)

	w.update("vip", func(u *upv1.UserPackageUpload) {
		u.Spec.CredentialsRef = nil
		u.Spec.BrandRef = &upv1.BrandReference{Name: w.brand}
	})
	after := w.waitReady("vip")
	if firstUpload(after).ID != before || w.sandbox.CountSucceeded(sandbox.EndpointInitiate) != initiates {
		t.Errorf("upload %s → %s, initiates %d → %d: the same brand_id must continue the upload",
			before, firstUpload(after).ID, initiates, w.sandbox.CountSucceeded(sandbox.EndpointInitiate))
	}
}

// A restarted manager reconciling the finished uploads of a WeChatPayBrand
// does not read the brand's Secret once an object (10,000 objects were
// 50 s of reads at the client's QPS): a reconcile that makes no call takes
// the brand of the Secret version read last, once the brand still allows
// the namespace, checked from the cache.
func TestARestartedManagerReadsABrandsSecretOnceNotOnceAnObject(t *testing.T) {
	const n = 12
	w := newTenants(t, tenancyOptions{})
	w.put("vip.csv", phoneFile(0, 100))
	w.brandSecret(identity.SecretData())
	w.createBrand()
	w.label(w.ns)
	reads := &brandSecretReads{namespace: w.operatorNS}
	w.wrapAPIReader = func(r client.Reader) client.Reader { reads.Reader = r; return reads }
	w.startManager(nil)
	for i := range n {
		w.upload(w.ns, fmt.Sprintf("brand-restart-%02d", i))
	}
	for i := range n {
		w.waitReadyIn(w.ns, fmt.Sprintf("brand-restart-%02d", i))
	}
	w.waitIdle()
	w.stopManager()
	calls := len(w.sandbox.Records())

	_, reconcilesBefore := managerActivity(t)
	reads.count.Store(0)
	w.startManager(nil)
	waitReconciles(t, reconcilesBefore+n, 30*time.Second)
	w.waitIdle()
	if got := reads.count.Load(); got == 0 || got > int64(w.maxConcurrentReconciles) {
		t.Errorf("the restarted manager read the brand's Secret %d times for %d finished objects, want at least once and at most once a worker (%d)",
			got, n, w.maxConcurrentReconciles)
	}
	if d := len(w.sandbox.Records()) - calls; d != 0 {
		t.Errorf("the restarted manager made %d WeChat Pay calls, want none", d)
	}
}

// brandSecretReads counts the reads of Secrets of the brand-secret
// namespace.
type brandSecretReads struct {
	client.Reader
	namespace string
	count     atomic.Int64
}

func (r *brandSecretReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*corev1.Secret); ok && key.Namespace == r.namespace {
		r.count.Add(1)
	}
	return r.Reader.Get(ctx, key, obj, opts...)
}
