package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/testutil/kubetest"
)

var k8s client.Client

func TestMain(m *testing.M) {
	env, err := kubetest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	k8s = env.Client
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func validObject() *upv1.UserPackageUpload {
	return &upv1.UserPackageUpload{
		ObjectMeta: metav1.ObjectMeta{Name: "vip-2026-11", Namespace: "default"},
		Spec: upv1.UserPackageUploadSpec{
			Source: upv1.Source{S3: &upv1.S3Source{
				Endpoint: "cos.ap-shanghai.myqcloud.com",
				Bucket:   "crowd-packages",
				Key:      "exports/2026-11/vip.csv",
			}},
			File: upv1.FileSpec{
				PackageType: upv1.PackageTypeExposure,
				DataType:    upv1.DataTypePhone,
				Description: "2026-11 VIP customers who bought twice",
			},
			CredentialsRef: &upv1.SecretReference{Name: "wechatpay-brand"},
		},
	}
}

// baseDigest is a well-formed digest of a base.
var baseDigest = "sha256:" + strings.Repeat("ab", 32)

func pinnedBase(src upv1.Source, digest, versionID string) *upv1.PinnedSource {
	return &upv1.PinnedSource{Source: src, Digest: digest, VersionID: versionID}
}

func httpSource(url string, insecure bool) upv1.Source {
	return upv1.Source{HTTP: &upv1.HTTPSource{URL: url, Insecure: insecure}}
}

// TestAdmission applies each object to the real API server (dry run) and
// checks that it is accepted, or refused with a message naming the field.
func TestAdmission(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(u *upv1.UserPackageUpload)
		// wantField is the field the refusal names; empty: accepted.
		wantField string
		wantText  string
	}{
		{name: "a complete s3 object is accepted", mutate: func(*upv1.UserPackageUpload) {}},
		{
			name:      "an object with no source kind is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.Source = upv1.Source{} },
			wantField: "spec.source", wantText: "exactly one of s3 or http must be set",
		},
		{
			name: "an object with both s3 and http is refused",
			mutate: func(u *upv1.UserPackageUpload) {
				u.Spec.Source.HTTP = &upv1.HTTPSource{URL: "https://files.example.com/vip.csv"}
			},
			wantField: "spec.source", wantText: "exactly one of s3 or http must be set",
		},
		{
			name:   "an s3 endpoint with a port is accepted",
			mutate: func(u *upv1.UserPackageUpload) { u.Spec.Source.S3.Endpoint = "minio.storage.svc:9000" },
		},
		{
			name:      "an s3 endpoint with a scheme is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.Source.S3.Endpoint = "https://s3.amazonaws.com" },
			wantField: "spec.source.s3.endpoint",
		},
		{
			name:      "an s3 source without an endpoint is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.Source.S3.Endpoint = "" },
			wantField: "spec.source.s3.endpoint",
		},
		{
			name:      "a bucket with upper-case letters is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.Source.S3.Bucket = "Crowd-Packages" },
			wantField: "spec.source.s3.bucket",
		},
		{
			name:      "a bucket name of two characters is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.Source.S3.Bucket = "ab" },
			wantField: "spec.source.s3.bucket",
		},
		{
			name:      "a bucket with two adjacent dots is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.Source.S3.Bucket = "crowd..packages" },
			wantField: "spec.source.s3.bucket", wantText: "adjacent dots",
		},
		{
			name:      "an s3 source without a key is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.Source.S3.Key = "" },
			wantField: "spec.source.s3.key",
		},
		{
			name:      "a bucket lookup other than auto, path or dns is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.Source.S3.BucketLookup = "virtual" },
			wantField: "spec.source.s3.bucketLookup",
		},
		{
			name: "an https url is accepted",
			mutate: func(u *upv1.UserPackageUpload) {
				u.Spec.Source = httpSource("https://files.example.com/vip.csv", false)
			},
		},
		{
			name:      "an http url without insecure is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.Source = httpSource("http://files.example.com/vip.csv", false) },
			wantField: "spec.source.http.url", wantText: "https://",
		},
		{
			name:   "an http url with insecure is accepted",
			mutate: func(u *upv1.UserPackageUpload) { u.Spec.Source = httpSource("http://files.example.com/vip.csv", true) },
		},
		{
			name:      "an ftp url is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.Source = httpSource("ftp://files.example.com/vip.csv", true) },
			wantField: "spec.source.http.url",
		},
		{
			name:   "a filename of letters, digits, _ . - ending in .csv is accepted",
			mutate: func(u *upv1.UserPackageUpload) { u.Spec.File.Filename = "vip_2026-11.v2.csv" },
		},
		{
			name:      "a filename not ending in .csv is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.File.Filename = "vip.txt" },
			wantField: "spec.file.filename",
		},
		{
			name:      "a filename with a space is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.File.Filename = "vip list.csv" },
			wantField: "spec.file.filename",
		},
		{
			name:   "a filename of 128 characters is accepted",
			mutate: func(u *upv1.UserPackageUpload) { u.Spec.File.Filename = strings.Repeat("a", 124) + ".csv" },
		},
		{
			name:      "a filename of 129 characters is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.File.Filename = strings.Repeat("a", 125) + ".csv" },
			wantField: "spec.file.filename",
		},
		{
			name:      "no filename and a key whose base name is not a csv name is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.Source.S3.Key = "exports/vip list.txt" },
			wantField: "spec.file.filename", wantText: "file.filename is required",
		},
		{
			name: "no filename and a url whose path ends in a csv name is accepted",
			mutate: func(u *upv1.UserPackageUpload) {
				u.Spec.Source = httpSource("https://files.example.com/exports/vip.csv?X-Amz-Signature=abc", false)
			},
		},
		{
			name: "a description of 15 Chinese characters is accepted",
			mutate: func(u *upv1.UserPackageUpload) {
				u.Spec.File.Description = "二零二六年十一月高价值会员人群"
			},
		},
		{
			name: "a description of 14 Chinese characters is refused",
			mutate: func(u *upv1.UserPackageUpload) {
				u.Spec.File.Description = "二零二六年十一月高价值会员人"
			},
			wantField: "spec.file.description",
		},
		{
			name:      "a description of 129 characters is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.File.Description = strings.Repeat("x", 129) },
			wantField: "spec.file.description",
		},
		{
			name:      "a description with an emoji is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.File.Description = "VIP customers of November 🎉" },
			wantField: "spec.file.description", wantText: "4-byte",
		},
		{
			name:   "the Risk package type is accepted",
			mutate: func(u *upv1.UserPackageUpload) { u.Spec.File.PackageType = upv1.PackageTypeRisk },
		},
		{
			name:      "an unknown package type is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.File.PackageType = "USER_PACKAGE_TYPE_EXPOSURE" },
			wantField: "spec.file.packageType",
		},
		{
			name:   "the OpenID data type is accepted",
			mutate: func(u *upv1.UserPackageUpload) { u.Spec.File.DataType = upv1.DataTypeOpenID },
		},
		{
			name:      "an unknown data type is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.File.DataType = "Email" },
			wantField: "spec.file.dataType",
		},
		{
			name:      "a credentials reference without a name is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.CredentialsRef.Name = "" },
			wantField: "spec.credentialsRef.name",
		},
		{
			name:      "a secret reference that is not a valid name is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.Source.S3.SecretRef = &upv1.SecretReference{Name: "other/cos"} },
			wantField: "spec.source.s3.secretRef.name",
		},
		{
			name:   "a 20-digit user package id is accepted",
			mutate: func(u *upv1.UserPackageUpload) { u.Spec.UserPackageID = "01000100010000000007" },
		},
		{
			name:      "a 19-digit user package id is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.UserPackageID = "0100010001000000007" },
			wantField: "spec.userPackageID",
		},
		{
			name:   "a limit of 1000 lines per upload is accepted",
			mutate: func(u *upv1.UserPackageUpload) { u.Spec.File.MaxLinesPerUpload = ptr.To[int32](1000) },
		},
		{
			name:   "a limit of 0 lines per upload, never splitting, is accepted",
			mutate: func(u *upv1.UserPackageUpload) { u.Spec.File.MaxLinesPerUpload = ptr.To[int32](0) },
		},
		{
			name:      "a limit of 999 lines per upload is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.File.MaxLinesPerUpload = ptr.To[int32](999) },
			wantField: "spec.file.maxLinesPerUpload", wantText: "at least 1000, or 0 to never split",
		},
		{
			name:      "a negative limit of lines per upload is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.File.MaxLinesPerUpload = ptr.To[int32](-1) },
			wantField: "spec.file.maxLinesPerUpload",
		},
		{
			name:   "a file whose header row is skipped is accepted",
			mutate: func(u *upv1.UserPackageUpload) { u.Spec.File.SkipHeaderRow = true },
		},
		{
			name:   "MD5 hashing of a Phone file is accepted",
			mutate: func(u *upv1.UserPackageUpload) { u.Spec.File.Hashing = upv1.HashingMD5 },
		},
		{
			name: "no hashing of an OpenID file is accepted",
			mutate: func(u *upv1.UserPackageUpload) {
				u.Spec.File.DataType, u.Spec.File.Hashing = upv1.DataTypeOpenID, upv1.HashingNone
			},
		},
		{
			name: "MD5 hashing of an OpenID file is refused",
			mutate: func(u *upv1.UserPackageUpload) {
				u.Spec.File.DataType, u.Spec.File.Hashing = upv1.DataTypeOpenID, upv1.HashingMD5
			},
			wantField: "spec.file.hashing", wantText: "needs dataType: Phone; set dataType: Phone or hashing: None",
		},
		{
			name:      "a hashing other than None or MD5 is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.File.Hashing = "SHA256" },
			wantField: "spec.file.hashing",
		},
		{
			name:      "a validation mode other than Report or Strict is refused",
			mutate:    func(u *upv1.UserPackageUpload) { u.Spec.Validation = "Lenient" },
			wantField: "spec.validation",
		},
		{
			name: "a base pinned by digest and S3 version is accepted",
			mutate: func(u *upv1.UserPackageUpload) {
				u.Spec.File.ExcludeMembersOf = pinnedBase(upv1.Source{S3: u.Spec.Source.S3.DeepCopy()}, baseDigest, "3HL4kqtJlcpXroDTDmJ")
			},
		},
		{
			name: "a base without a sha256 digest is refused",
			mutate: func(u *upv1.UserPackageUpload) {
				u.Spec.File.ExcludeMembersOf = pinnedBase(upv1.Source{S3: u.Spec.Source.S3.DeepCopy()}, "md5:0123", "")
			},
			wantField: "spec.file.excludeMembersOf.digest",
		},
		{
			name: "a base with a versionID but no s3 is refused",
			mutate: func(u *upv1.UserPackageUpload) {
				u.Spec.File.ExcludeMembersOf = pinnedBase(httpSource("https://files.example.com/vip.csv", false), baseDigest, "v1")
			},
			wantField: "spec.file.excludeMembersOf.versionID", wantText: "needs s3",
		},
		{
			name: "a base with both s3 and http is refused",
			mutate: func(u *upv1.UserPackageUpload) {
				base := upv1.Source{S3: u.Spec.Source.S3.DeepCopy(), HTTP: &upv1.HTTPSource{URL: "https://files.example.com/vip.csv"}}
				u.Spec.File.ExcludeMembersOf = pinnedBase(base, baseDigest, "")
			},
			wantField: "spec.file.excludeMembersOf", wantText: "exactly one of s3 or http must be set",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := validObject()
			tt.mutate(u)
			assertAdmission(t, u, tt.wantField, tt.wantText)
		})
	}
}

// assertAdmission dry-runs the creation of obj: it must be accepted when
// wantField is empty, else refused naming wantField and saying wantText.
func assertAdmission(t *testing.T, obj client.Object, wantField, wantText string) {
	t.Helper()
	err := k8s.Create(context.Background(), obj, client.DryRunAll)
	if wantField == "" {
		if err != nil {
			t.Fatalf("want accepted, got %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("want refused naming %s, got accepted", wantField)
	}
	if !strings.Contains(err.Error(), wantField+":") {
		t.Errorf("error does not name %s:\n%v", wantField, err)
	}
	if !strings.Contains(err.Error(), wantText) {
		t.Errorf("error does not say %q:\n%v", wantText, err)
	}
}

// TestAdmissionDefaults checks what the API server fills in.
func TestAdmissionDefaults(t *testing.T) {
	u := validObject()
	if err := k8s.Create(context.Background(), u, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	if u.Spec.Validation != upv1.ValidationReport {
		t.Errorf("validation defaults to %q, want Report", u.Spec.Validation)
	}
	if !ptr.Deref(u.Spec.UploadParts, false) {
		t.Errorf("uploadParts defaults to %v, want true", u.Spec.UploadParts)
	}
	if got := ptr.Deref(u.Spec.File.MaxLinesPerUpload, -1); got != 500000 {
		t.Errorf("maxLinesPerUpload defaults to %d, want 500000", got)
	}
	if u.Spec.File.Hashing != upv1.HashingNone {
		t.Errorf("hashing defaults to %q, want None", u.Spec.File.Hashing)
	}
	if u.Spec.Source.S3.BucketLookup != upv1.BucketLookupAuto {
		t.Errorf("bucketLookup defaults to %q, want auto", u.Spec.Source.S3.BucketLookup)
	}
}
