package sandbox_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/crowdpack/crowdpack/internal/sandbox"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

func TestFullUploadFlow(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("initiate, parts, merge and expand give back the same file (TLS %v)", useTLS), func(t *testing.T) {
			srv, inst := startSandbox(t, useTLS)
			client := newClient(t, inst, credsA(t))
			ctx := context.Background()
			file := csvFile(2*testPartSize + 600)

			plan, err := client.InitiateUpload(ctx, initiateFor("vip_2026_11.csv", file))
			if err != nil {
				t.Fatalf("InitiateUpload: %v", err)
			}
			if plan.ReturnMessage != "success" || plan.FilePartSize != testPartSize || plan.FilePartCount != 3 {
				t.Fatalf("plan %+v, want 3 parts of %d", plan, testPartSize)
			}
			if !documentedUploadID.MatchString(plan.UploadID) {
				t.Fatalf("upload_id %q, want 10 digits of Unix seconds and 64 lowercase hex digits", plan.UploadID)
			}
			if secs, _ := strconv.ParseInt(plan.UploadID[:10], 10, 64); time.Since(time.Unix(secs, 0)).Abs() > time.Minute {
				t.Fatalf("upload_id %q does not start with the current Unix seconds", plan.UploadID)
			}
			for n := 1; n <= int(plan.FilePartCount); n++ {
				if _, err := client.UploadPart(ctx, partOf(plan.UploadID, "vip_2026_11.csv", file, plan.FilePartSize, n)); err != nil {
					t.Fatalf("UploadPart %d: %v", n, err)
				}
			}
			if _, err := client.UploadPart(ctx, partOf(plan.UploadID, "vip_2026_11.csv", file, plan.FilePartSize, 2)); err != nil {
				t.Fatalf("re-uploading part 2 with the same bytes: %v", err)
			}
			merged, err := client.MergeParts(ctx, plan.UploadID)
			if err != nil || merged.ResourceID == "" {
				t.Fatalf("MergeParts = %+v, %v", merged, err)
			}
			_, err = client.MergeParts(ctx, plan.UploadID)
			var api *wechatpay.APIError
			if !errors.As(err, &api) || api.StatusCode != 400 || api.Code != "INVALID_REQUEST" || !strings.Contains(api.Message, "already merged") {
				t.Fatalf("a second merge: %v, want 400 INVALID_REQUEST already merged", err)
			}
			if _, err := client.ExpandPackage(ctx, "01000100010000000007", plan.UploadID); err != nil {
				t.Fatalf("ExpandPackage: %v", err)
			}

			got, ok := srv.MergedFile(plan.UploadID)
			if !ok || !bytes.Equal(got, file) {
				t.Fatalf("merged file differs from the original (found %v)", ok)
			}
			if overHTTP := getAdmin(t, inst, "/sandbox/uploads/"+plan.UploadID+"/file"); !bytes.Equal(overHTTP, file) {
				t.Fatal("the admin endpoint's file differs from the original")
			}
			wantRecords := []sandbox.Record{
				{BrandID: brandA.BrandID, Endpoint: sandbox.EndpointInitiate, Method: "POST", UploadID: plan.UploadID, Status: 200},
				{BrandID: brandA.BrandID, Endpoint: sandbox.EndpointUploadPart, Method: "PUT", UploadID: plan.UploadID, PartNumber: 1, Status: 200},
				{BrandID: brandA.BrandID, Endpoint: sandbox.EndpointUploadPart, Method: "PUT", UploadID: plan.UploadID, PartNumber: 2, Status: 200},
				{BrandID: brandA.BrandID, Endpoint: sandbox.EndpointUploadPart, Method: "PUT", UploadID: plan.UploadID, PartNumber: 3, Status: 200},
				{BrandID: brandA.BrandID, Endpoint: sandbox.EndpointUploadPart, Method: "PUT", UploadID: plan.UploadID, PartNumber: 2, Status: 200, Duplicate: true},
				{BrandID: brandA.BrandID, Endpoint: sandbox.EndpointMerge, Method: "POST", UploadID: plan.UploadID, Status: 200},
				{BrandID: brandA.BrandID, Endpoint: sandbox.EndpointMerge, Method: "POST", UploadID: plan.UploadID, Status: 400, Code: "INVALID_REQUEST"},
				{BrandID: brandA.BrandID, Endpoint: sandbox.EndpointExpand, Method: "POST", UploadID: plan.UploadID, UserPackageID: "01000100010000000007", Status: 200},
			}
			ignore := cmpopts.IgnoreFields(sandbox.Record{}, "Time", "RequestID", "Path")
			if diff := cmp.Diff(wantRecords, srv.Records(), ignore); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			var overHTTP []sandbox.Record
			if err := json.Unmarshal(getAdmin(t, inst, "/sandbox/records"), &overHTTP); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantRecords, overHTTP, ignore); diff != "" {
				t.Errorf("records over HTTP (-want +got):\n%s", diff)
			}
			if n := srv.CountSucceeded(sandbox.EndpointInitiate); n != 1 {
				t.Errorf("%d successful initiates, want 1", n)
			}
			if n := srv.CountSucceededExpands("01000100010000000007", plan.UploadID); n != 1 {
				t.Errorf("%d successful expands of the package with the upload, want 1", n)
			}
		})
	}
}

// documentedUploadID is the shape of the documentation's example upload_id.
var documentedUploadID = regexp.MustCompile(`^[0-9]{10}[0-9a-f]{64}$`)

func TestResponsesAreSignedAsDocumented(t *testing.T) {
	_, inst := startSandbox(t, false)
	for _, rr := range []rawRequest{
		{method: "POST", path: "/brand/marketing/user-package/uploads/nope"},
		{method: "GET", path: "/no/such/api"},
	} {
		resp, body := rr.send(t, inst)
		h := resp.Header
		msg := h.Get("Wechatpay-Timestamp") + "\n" + h.Get("Wechatpay-Nonce") + "\n" + body + "\n"
		sig, err := base64.StdEncoding.DecodeString(h.Get("Wechatpay-Signature"))
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256([]byte(msg))
		if err := rsa.VerifyPKCS1v15(&brandA.WechatPayKey.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
			t.Errorf("%s %s: answer not signed over TIMESTAMP\\nNONCE\\nBODY\\n: %v", rr.method, rr.path, err)
		}
		if h.Get("Wechatpay-Serial") != brandA.PublicKeyID || h.Get("Wechatpay-Signature-Type") != "WECHATPAY-BRAND-SHA256-RSA2048" || !strings.HasSuffix(h.Get("Request-ID"), "-404") {
			t.Errorf("%s %s: headers %v", rr.method, rr.path, h)
		}
		if !strings.Contains(body, `"code":"NOT_FOUND"`) {
			t.Errorf("%s %s: body %s, want NOT_FOUND", rr.method, rr.path, body)
		}
	}
}

// TestAPackageHoldsTheUnionOfTheUploadsExpandedIntoIt: two uploads that
// share members leave each member in the package once; an upload merged
// but not expanded adds nothing.
func TestAPackageHoldsTheUnionOfTheUploadsExpandedIntoIt(t *testing.T) {
	srv, inst := startSandbox(t, false)
	client := newClient(t, inst, credsA(t))
	ctx := context.Background()
	const pkg = "01000100010000000007"
	upload := func(name, content string, expand bool) {
		t.Helper()
		file := []byte(content)
		plan, err := client.InitiateUpload(ctx, initiateFor(name, file))
		must(t, err)
		for n := 1; n <= int(plan.FilePartCount); n++ {
			_, err := client.UploadPart(ctx, partOf(plan.UploadID, name, file, plan.FilePartSize, n))
			must(t, err)
		}
		_, err = client.MergeParts(ctx, plan.UploadID)
		must(t, err)
		if expand {
			_, err = client.ExpandPackage(ctx, pkg, plan.UploadID)
			must(t, err)
		}
	}
	upload("first.csv", "aa\nbb\n", true)
	upload("second.csv", "bb\r\ncc\r\n", true)
	upload("merged_only.csv", "dd\n", false)

	if got, want := srv.PackageMembers(pkg), []string{"aa", "bb", "cc"}; !slices.Equal(got, want) {
		t.Errorf("package members %v, want %v", got, want)
	}
	if got := srv.PackageMembers("01000100010000000008"); len(got) != 0 {
		t.Errorf("a package never expanded has members %v", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestTheSandboxSeesExpandsOfOnePackageAtOnce: the count the manager's
// turn-taking is checked against does see two expands of one package that
// overlap, and not two of different packages.
func TestTheSandboxSeesExpandsOfOnePackageAtOnce(t *testing.T) {
	srv, inst := startSandbox(t, false)
	must(t, srv.SetFaults(sandbox.EndpointExpand, sandbox.Faults{LatencyMillis: 200}))
	client := newClient(t, inst, credsA(t))
	ctx := context.Background()
	const pkg, other = "01000100010000000007", "01000100010000000008"
	merged := func(name string) string {
		t.Helper()
		file := []byte(name + "\n")
		plan, err := client.InitiateUpload(ctx, initiateFor(name, file))
		must(t, err)
		_, err = client.UploadPart(ctx, partOf(plan.UploadID, name, file, plan.FilePartSize, 1))
		must(t, err)
		_, err = client.MergeParts(ctx, plan.UploadID)
		must(t, err)
		return plan.UploadID
	}
	expands := []struct{ pkg, upload string }{{pkg, merged("a.csv")}, {pkg, merged("b.csv")}, {other, merged("c.csv")}}
	errs := make(chan error, len(expands))
	for _, e := range expands {
		go func() { _, err := client.ExpandPackage(ctx, e.pkg, e.upload); errs <- err }()
	}
	for range expands {
		must(t, <-errs)
	}
	if got := srv.MostExpandsAtOnce(pkg); got != 2 {
		t.Errorf("most expands of %s at once = %d, want 2", pkg, got)
	}
	if got := srv.MostExpandsAtOnce(other); got != 1 {
		t.Errorf("most expands of %s at once = %d, want 1", other, got)
	}
}
