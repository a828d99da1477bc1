//go:build e2enode

package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatpayv1alpha1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/sandbox"
)

const (
	tenantNamespace = "marketing"
	brandName       = "acme"
	brandSecret     = "wechatpay-brand-acme"
	storageSecret   = "minio"
	bucket          = "crowd-packages"
	userPackageID   = "01000100010000000007"
)

func clientKey(namespace, name string) client.ObjectKey {
	return client.ObjectKey{Namespace: namespace, Name: name}
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// setupTenant makes the platform's WeChatPayBrand (its Secret in the
// manager's namespace) and a team's namespace allowed to use it, holding
// the MinIO credentials.
func setupTenant(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	deleteNamespace(t, tenantNamespace)
	must(t, kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tenantNamespace,
		Labels: map[string]string{"crowdpack.io/brand": brandName}}}))
	must(t, kube.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNamespace, Name: storageSecret},
		Data: map[string][]byte{"accesskey": []byte(world.minioUser), "secretkey": []byte(world.minioKey)}}))
	must(t, ignoreExists(kube.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: managerNamespace, Name: brandSecret},
		Data: world.identity.SecretData()})))
	brand := &wechatpayv1alpha1.WeChatPayBrand{ObjectMeta: metav1.ObjectMeta{Name: brandName},
		Spec: wechatpayv1alpha1.WeChatPayBrandSpec{
			CredentialsSecretRef: wechatpayv1alpha1.SecretReference{Name: brandSecret},
			AllowedNamespaces: wechatpayv1alpha1.AllowedNamespaces{From: "Selector",
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"crowdpack.io/brand": brandName}}},
		}}
	must(t, ignoreExists(kube.Create(ctx, brand)))
}

func ignoreExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// rawExport is a CRM export of n raw mobile numbers under a header line,
// as spec.file.hashing: MD5 takes it.
func rawExport(n int, seed int) []byte {
	var b strings.Builder
	b.WriteString("mobile\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "13%d%08d\n", seed%10, i)
	}
	return []byte(b.String())
}

// createUpload puts a raw export of lines numbers in MinIO and a
// UserPackageUpload of it, hashed and split into uploads of at most
// maxLines, expanding the crowd package.
func createUpload(t *testing.T, name string, lines, maxLines int) {
	t.Helper()
	ctx := context.Background()
	key := "exports/" + name + ".csv"
	must(t, world.putObject(ctx, bucket, key, rawExport(lines, len(name))))
	maxPer := int32(maxLines)
	u := &wechatpayv1alpha1.UserPackageUpload{
		ObjectMeta: metav1.ObjectMeta{Namespace: tenantNamespace, Name: name},
		Spec: wechatpayv1alpha1.UserPackageUploadSpec{
			Source: wechatpayv1alpha1.Source{S3: &wechatpayv1alpha1.S3Source{
				Endpoint: world.minioEndpoint, Bucket: bucket, Key: key, BucketLookup: "path", Insecure: true,
				SecretRef: &wechatpayv1alpha1.SecretReference{Name: storageSecret},
			}},
			File: wechatpayv1alpha1.FileSpec{
				Filename: strings.ReplaceAll(name, "-", "_") + ".csv", PackageType: "Exposure", DataType: "Phone",
				Description: "e2e-node raw export hashed in the cluster", SkipHeaderRow: true, Hashing: "MD5",
				MaxLinesPerUpload: &maxPer,
			},
			BrandRef:      &wechatpayv1alpha1.BrandReference{Name: brandName},
			UserPackageID: userPackageID,
		},
	}
	must(t, kube.Create(ctx, u))
}

func getUpload(ctx context.Context, name string) (*wechatpayv1alpha1.UserPackageUpload, error) {
	u := &wechatpayv1alpha1.UserPackageUpload{}
	return u, kube.Get(ctx, clientKey(tenantNamespace, name), u)
}

// waitUploadReady waits for Ready=True at the object's generation.
func waitUploadReady(t *testing.T, name string, timeout time.Duration) *wechatpayv1alpha1.UserPackageUpload {
	t.Helper()
	var u *wechatpayv1alpha1.UserPackageUpload
	eventually(t, timeout, "UserPackageUpload "+name+" Ready", func(ctx context.Context) error {
		var err error
		if u, err = getUpload(ctx, name); err != nil {
			return err
		}
		ready := meta.FindStatusCondition(u.Status.Conditions, wechatpayv1alpha1.ConditionReady)
		if ready == nil || ready.Status != metav1.ConditionTrue || u.Status.ObservedGeneration != u.Generation {
			return fmt.Errorf("conditions %s; manager pods: %s", conditionsOf(u), managerPodStates(ctx))
		}
		return nil
	})
	return u
}

func conditionsOf(u *wechatpayv1alpha1.UserPackageUpload) string {
	var out []string
	for _, c := range u.Status.Conditions {
		out = append(out, fmt.Sprintf("%s=%s(%s: %s)", c.Type, c.Status, c.Reason, c.Message))
	}
	return strings.Join(out, ", ")
}

func managerPodStates(ctx context.Context) string {
	pods, err := managerPods(ctx)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, p := range pods {
		out = append(out, podState(p))
	}
	return strings.Join(out, "; ")
}

// callsOf counts the sandbox's successful calls per endpoint and part for
// the uploads of u: the record of what WeChat Pay received.
type callsOf map[string]int

func recordedCalls(u *wechatpayv1alpha1.UserPackageUpload) callsOf {
	ids := map[string]bool{}
	for _, s := range u.Status.Uploads {
		ids[s.ID] = true
	}
	calls := callsOf{}
	for _, r := range world.sandbox.Records() {
		if !ids[r.UploadID] || !r.Succeeded() {
			continue
		}
		key := fmt.Sprintf("%s %s", r.UploadID, r.Endpoint)
		if r.Endpoint == sandbox.EndpointUploadPart {
			key += fmt.Sprintf(" %d", r.PartNumber)
		}
		calls[key]++
	}
	return calls
}

// wantCalls is every call an upload set needs, once: per upload an
// initiate, each part, a merge and the expand.
func wantCalls(u *wechatpayv1alpha1.UserPackageUpload) callsOf {
	calls := callsOf{}
	for _, s := range u.Status.Uploads {
		calls[s.ID+" initiate"] = 1
		for p := int64(1); p <= s.PartCount; p++ {
			calls[fmt.Sprintf("%s upload_part %d", s.ID, p)] = 1
		}
		calls[s.ID+" merge"] = 1
		calls[s.ID+" expand"] = 1
	}
	return calls
}

// checkEveryCallOnce fails t unless the sandbox recorded each call of u's
// uploads exactly once (and u has the uploads its split asks for).
func checkEveryCallOnce(t *testing.T, u *wechatpayv1alpha1.UserPackageUpload, wantUploads int) {
	t.Helper()
	if len(u.Status.Uploads) != wantUploads {
		t.Fatalf("status.uploads has %d uploads, want %d", len(u.Status.Uploads), wantUploads)
	}
	got, want := recordedCalls(u), wantCalls(u)
	var diff []string
	for k := range union(got, want) {
		if got[k] != want[k] {
			diff = append(diff, fmt.Sprintf("%s: recorded %d, want %d", k, got[k], want[k]))
		}
	}
	sort.Strings(diff)
	if len(diff) > 0 {
		t.Fatalf("the sandbox's record differs from one call each:\n%s", strings.Join(diff, "\n"))
	}
}

func union(a, b callsOf) map[string]bool {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}
