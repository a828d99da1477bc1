package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/crowdpack/crowdpack/internal/sandbox"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

const (
	packageOne = "01000100010000000007"
	packageTwo = "01000100010000000008"
)

// mergedUpload initiates, uploads and merges a two-part file as brand A.
func mergedUpload(t *testing.T, client *wechatpay.Client, filename string) (uploadID, resourceID string) {
	t.Helper()
	ctx := context.Background()
	file := csvFile(testPartSize + 10)
	plan, err := client.InitiateUpload(ctx, initiateFor(filename, file))
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= int(plan.FilePartCount); n++ {
		if _, err := client.UploadPart(ctx, partOf(plan.UploadID, filename, file, plan.FilePartSize, n)); err != nil {
			t.Fatal(err)
		}
	}
	merged, err := client.MergeParts(ctx, plan.UploadID)
	if err != nil {
		t.Fatal(err)
	}
	return plan.UploadID, merged.ResourceID
}

// wantRefusal fails unless err is a 400 INVALID_REQUEST whose message holds want.
func wantRefusal(t *testing.T, err error, want string) {
	t.Helper()
	var api *wechatpay.APIError
	if !errors.As(err, &api) || api.StatusCode != 400 || api.Code != "INVALID_REQUEST" || !strings.Contains(api.Message, want) {
		t.Fatalf("error %v, want 400 INVALID_REQUEST saying %q", err, want)
	}
}

func TestSandboxRefusesRepeatedMergeAndExpandUnlessIdempotent(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name       string
		idempotent sandbox.Idempotency
		// act repeats a call on a merged upload and checks its answer.
		act func(t *testing.T, client *wechatpay.Client, uploadID, resourceID string)
		// wantExpands is the count of successful expands of packageOne with the upload.
		wantExpands int
	}{
		{
			name: "a second merge of a merged upload is refused as already merged",
			act: func(t *testing.T, client *wechatpay.Client, uploadID, _ string) {
				_, err := client.MergeParts(ctx, uploadID)
				wantRefusal(t, err, "upload "+uploadID+" is already merged")
			},
		},
		{
			name:       "with idempotent merge a second merge answers the first resource_id",
			idempotent: sandbox.Idempotency{Merge: true},
			act: func(t *testing.T, client *wechatpay.Client, uploadID, resourceID string) {
				again, err := client.MergeParts(ctx, uploadID)
				if err != nil || again.ResourceID != resourceID {
					t.Fatalf("second merge = %+v, %v; want resource %s", again, err, resourceID)
				}
			},
		},
		{
			name: "a second expand of a package with the same upload is refused as already expanded",
			act: func(t *testing.T, client *wechatpay.Client, uploadID, _ string) {
				if _, err := client.ExpandPackage(ctx, packageOne, uploadID); err != nil {
					t.Fatal(err)
				}
				_, err := client.ExpandPackage(ctx, packageOne, uploadID)
				wantRefusal(t, err, "already expanded")
			},
			wantExpands: 1,
		},
		{
			name:       "with idempotent expand a second expand succeeds and both are counted",
			idempotent: sandbox.Idempotency{Expand: true},
			act: func(t *testing.T, client *wechatpay.Client, uploadID, _ string) {
				for range 2 {
					if _, err := client.ExpandPackage(ctx, packageOne, uploadID); err != nil {
						t.Fatal(err)
					}
				}
			},
			wantExpands: 2,
		},
		{
			name: "expanding two packages with one upload is no repeat",
			act: func(t *testing.T, client *wechatpay.Client, uploadID, _ string) {
				for _, pkg := range []string{packageOne, packageTwo} {
					if _, err := client.ExpandPackage(ctx, pkg, uploadID); err != nil {
						t.Fatalf("expand %s: %v", pkg, err)
					}
				}
			},
			wantExpands: 1,
		},
		{
			name:       "idempotent merge leaves expand strict",
			idempotent: sandbox.Idempotency{Merge: true},
			act: func(t *testing.T, client *wechatpay.Client, uploadID, _ string) {
				if _, err := client.ExpandPackage(ctx, packageOne, uploadID); err != nil {
					t.Fatal(err)
				}
				_, err := client.ExpandPackage(ctx, packageOne, uploadID)
				wantRefusal(t, err, "already expanded")
			},
			wantExpands: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, inst := startSandbox(t, false, func(c *sandbox.Config) { c.Idempotent = tc.idempotent })
			client := newClient(t, inst, credsA(t))
			uploadID, resourceID := mergedUpload(t, client, "repeat.csv")
			tc.act(t, client, uploadID, resourceID)
			if n := srv.CountSucceededExpands(packageOne, uploadID); n != tc.wantExpands {
				t.Fatalf("%d successful expands of %s with the upload, want %d", n, packageOne, tc.wantExpands)
			}
			for _, r := range srv.Records() {
				if r.Status == 400 && r.Duplicate {
					t.Fatalf("a refused repeat is marked duplicate: %+v", r)
				}
			}
		})
	}
}

func TestRefusedRepeatsAreRecordedAndCounted(t *testing.T) {
	srv, inst := startSandbox(t, false)
	client := newClient(t, inst, credsA(t))
	uploadID, _ := mergedUpload(t, client, "counted.csv")
	for range 3 {
		_, _ = client.ExpandPackage(context.Background(), packageOne, uploadID)
	}
	var statuses []string
	for _, r := range srv.Records() {
		if r.Endpoint == sandbox.EndpointExpand {
			statuses = append(statuses, fmt.Sprintf("%s/%s %d %s", r.UserPackageID, r.UploadID[:10], r.Status, r.Code))
		}
	}
	want := fmt.Sprintf("%[1]s/%[2]s 200 ,%[1]s/%[2]s 400 INVALID_REQUEST,%[1]s/%[2]s 400 INVALID_REQUEST", packageOne, uploadID[:10])
	if got := strings.Join(statuses, ","); got != want {
		t.Fatalf("expand records %s, want %s", got, want)
	}
	if n := srv.CountSucceededExpands(packageOne, uploadID); n != 1 {
		t.Fatalf("%d successful expands, want 1", n)
	}
}

func TestIdempotencyCanBeSwitchedAtRunTime(t *testing.T) {
	srv, inst := startSandbox(t, false)
	client := newClient(t, inst, credsA(t))
	uploadID, resourceID := mergedUpload(t, client, "switch.csv")
	if got := srv.Idempotency(); got != (sandbox.Idempotency{}) {
		t.Fatalf("default idempotency %+v, want both strict", got)
	}

	req, _ := http.NewRequest("PUT", inst.URL+"/sandbox/idempotency", strings.NewReader(`{"merge":true}`))
	resp, err := httpClient(t, inst).Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT /sandbox/idempotency: %v %v", resp, err)
	}
	var overHTTP sandbox.Idempotency
	if err := json.Unmarshal(getAdmin(t, inst, "/sandbox/idempotency"), &overHTTP); err != nil || overHTTP != (sandbox.Idempotency{Merge: true}) {
		t.Fatalf("GET /sandbox/idempotency = %+v, %v", overHTTP, err)
	}
	if again, err := client.MergeParts(context.Background(), uploadID); err != nil || again.ResourceID != resourceID {
		t.Fatalf("merge after switching idempotent merge on = %+v, %v", again, err)
	}

	srv.SetIdempotency(sandbox.Idempotency{})
	_, err = client.MergeParts(context.Background(), uploadID)
	wantRefusal(t, err, "already merged")

	req, _ = http.NewRequest("PUT", inst.URL+"/sandbox/idempotency", strings.NewReader(`{"merges":true}`))
	if resp, err := httpClient(t, inst).Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an unknown idempotency field: %v %v, want 400", resp, err)
	}
}

func TestErrorRequestIDsEndInTheHTTPStatus(t *testing.T) {
	srv, inst := startSandbox(t, false)
	cases := []struct {
		name       string
		req        rawRequest
		wantStatus int
	}{
		{name: "a success's Request-ID has no status suffix", req: rawRequest{method: "POST", path: "/brand/marketing/user-package/uploads",
			body: `{"user_package_file_info":{"filename":"rid.csv","digest":"` + strings.Repeat("0a", 32) + `","package_type":"USER_PACKAGE_TYPE_RISK","data_type":"USER_PACKAGE_DATA_TYPE_OPENID","description":"request id suffix test","file_size":10}}`},
			wantStatus: 200},
		{name: "a 400's Request-ID ends in -400", req: rawRequest{method: "POST", path: "/brand/marketing/user-package/uploads", body: `{}`}, wantStatus: 400},
		{name: "a 401's Request-ID ends in -401", req: rawRequest{method: "POST", path: "/brand/marketing/user-package/uploads/x", alterSignature: func(string) string { return "AAAA" }}, wantStatus: 401},
		{name: "a 404's Request-ID ends in -404", req: rawRequest{method: "POST", path: "/brand/marketing/user-package/uploads/x"}, wantStatus: 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := tc.req.send(t, inst)
			id := resp.Header.Get("Request-ID")
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("answer %d %s, want %d", resp.StatusCode, body, tc.wantStatus)
			}
			base, suffix, cut := strings.Cut(id, "-")
			switch {
			case tc.wantStatus < 400 && (cut || base == ""):
				t.Fatalf("Request-ID %q of a success has a suffix", id)
			case tc.wantStatus >= 400 && (suffix != fmt.Sprint(tc.wantStatus) || base == ""):
				t.Fatalf("Request-ID %q, want an ID ending in -%d", id, tc.wantStatus)
			}
			records := srv.Records()
			if last := records[len(records)-1]; last.RequestID != id {
				t.Fatalf("recorded Request-ID %q, answered %q", last.RequestID, id)
			}
		})
	}
}

func TestIdempotencyIsReadFromTheConfigFile(t *testing.T) {
	cases := []struct {
		name    string
		yaml    string
		want    sandbox.Idempotency
		wantErr bool
	}{
		{name: "no idempotent key leaves merge and expand strict", want: sandbox.Idempotency{}},
		{name: "idempotent merge and expand are read", yaml: "idempotent:\n  merge: true\n  expand: true\n", want: sandbox.Idempotency{Merge: true, Expand: true}},
		{name: "a misspelt idempotency key is refused", yaml: "idempotent:\n  merged: true\n", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base, err := yaml.Marshal(brandA.Config())
			if err != nil {
				t.Fatal(err)
			}
			base = []byte(strings.Replace(string(base), "idempotent: {}\n", "", 1)) // the zero value, written out
			path := filepath.Join(t.TempDir(), "sandbox.yaml")
			if err := os.WriteFile(path, append(base, tc.yaml...), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := sandbox.LoadConfig(path)
			if tc.wantErr {
				if err == nil {
					t.Fatal("LoadConfig accepted the config")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			srv, err := sandbox.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := srv.Idempotency(); got != tc.want {
				t.Fatalf("idempotency %+v, want %+v", got, tc.want)
			}
		})
	}
}
