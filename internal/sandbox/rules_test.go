package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/crowdpack/crowdpack/internal/sandbox"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

func TestSandboxEnforcesInitiateFieldRules(t *testing.T) {
	_, inst := startSandbox(t, false)
	body := func(i int, mutate func(info map[string]any)) string {
		info := map[string]any{
			"filename": fmt.Sprintf("rules_%d.csv", i), "digest": strings.Repeat("0a", 32),
			"package_type": "USER_PACKAGE_TYPE_RISK", "data_type": "USER_PACKAGE_DATA_TYPE_OPENID",
			"description": "sandbox field rule test", "file_size": 100,
		}
		if mutate != nil {
			mutate(info)
		}
		data, _ := json.Marshal(map[string]any{"user_package_file_info": info})
		return string(data)
	}
	cases := []struct {
		name     string
		body     string // used when set
		mutate   func(info map[string]any)
		ctype    string
		wantCode string // empty: accepted
	}{
		{name: "a complete valid body is accepted"},
		{name: "a description of 15 Chinese characters is accepted", mutate: func(m map[string]any) { m["description"] = "二〇二六年十一月高价值会员人群包" }},
		{name: "null in a field is refused", mutate: func(m map[string]any) { m["description"] = nil }, wantCode: "PARAM_ERROR"},
		{name: "a missing data_type is refused", mutate: func(m map[string]any) { delete(m, "data_type") }, wantCode: "PARAM_ERROR"},
		{name: "an unknown field is refused", mutate: func(m map[string]any) { m["mchid"] = "1" }, wantCode: "PARAM_ERROR"},
		{name: "a file_size given as a string is refused", mutate: func(m map[string]any) { m["file_size"] = "100" }, wantCode: "PARAM_ERROR"},
		{name: "a zero file_size is refused", mutate: func(m map[string]any) { m["file_size"] = 0 }, wantCode: "PARAM_ERROR"},
		{name: "a filename not ending in .csv is refused", mutate: func(m map[string]any) { m["filename"] = "rules.xlsx" }, wantCode: "PARAM_ERROR"},
		{name: "a filename with a space is refused", mutate: func(m map[string]any) { m["filename"] = "my rules.csv" }, wantCode: "PARAM_ERROR"},
		{name: "a filename of 129 characters is refused", mutate: func(m map[string]any) { m["filename"] = strings.Repeat("r", 125) + ".csv" }, wantCode: "PARAM_ERROR"},
		{name: "an upper-case digest is refused", mutate: func(m map[string]any) { m["digest"] = strings.Repeat("0A", 32) }, wantCode: "PARAM_ERROR"},
		{name: "an unknown package_type is refused", mutate: func(m map[string]any) { m["package_type"] = "USER_PACKAGE_TYPE_VIP" }, wantCode: "PARAM_ERROR"},
		{name: "an unknown data_type is refused", mutate: func(m map[string]any) { m["data_type"] = "PHONE" }, wantCode: "PARAM_ERROR"},
		{name: "a description of 14 characters is refused", mutate: func(m map[string]any) { m["description"] = strings.Repeat("d", 14) }, wantCode: "PARAM_ERROR"},
		{name: "a description of 129 characters is refused", mutate: func(m map[string]any) { m["description"] = strings.Repeat("d", 129) }, wantCode: "PARAM_ERROR"},
		{name: "an emoji in the description is refused", mutate: func(m map[string]any) { m["description"] = "sandbox field rule 🎉 test" }, wantCode: "PARAM_ERROR"},
		{name: "an escaped emoji is refused too", body: `{"user_package_file_info":{"filename":"esc.csv","digest":"` + strings.Repeat("0a", 32) + `","package_type":"USER_PACKAGE_TYPE_RISK","data_type":"USER_PACKAGE_DATA_TYPE_OPENID","description":"sandbox field rule \ud83c\udf89 test","file_size":100}}`, wantCode: "PARAM_ERROR"},
		{name: "null at the top level is refused", body: `{"user_package_file_info":null}`, wantCode: "PARAM_ERROR"},
		{name: "a key twice in the nested object is refused", body: strings.Replace(body(100, nil), `"file_size":100`, `"file_size":100,"file_size":100`, 1), wantCode: "PARAM_ERROR"},
		{name: "a key twice at the top level is refused", body: `{"user_package_file_info":{},` + body(101, nil)[1:], wantCode: "PARAM_ERROR"},
		{name: "a key twice, once spelt with an escape, is refused", body: strings.Replace(body(102, nil), `"file_size":100`, `"file_size":100,"file\u005fsize":100`, 1), wantCode: "PARAM_ERROR"},
		{name: "keys differing only in case are refused as unknown", body: strings.Replace(body(103, nil), `"file_size":100`, `"file_size":100,"File_size":100`, 1), wantCode: "PARAM_ERROR"},
		{name: "a body that is not JSON is refused", body: `filename=a.csv`, wantCode: "PARAM_ERROR"},
		{name: "a Content-Type other than JSON is refused", ctype: "text/plain", wantCode: "PARAM_ERROR"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.body
			if b == "" {
				b = body(i, tc.mutate)
			}
			resp, answer := rawRequest{method: "POST", path: "/brand/marketing/user-package/uploads", body: b, contentType: tc.ctype}.send(t, inst)
			if tc.wantCode == "" {
				if resp.StatusCode != 200 || !strings.Contains(answer, `"return_message":"success"`) || !strings.Contains(answer, `"file_part_count":1`) {
					t.Fatalf("answer %d %s, want success with one part", resp.StatusCode, answer)
				}
				return
			}
			if resp.StatusCode != 400 || !strings.Contains(answer, `"code":"`+tc.wantCode+`"`) {
				t.Fatalf("answer %d %s, want 400 %s", resp.StatusCode, answer, tc.wantCode)
			}
		})
	}
	t.Run("a filename the brand already used is refused, naming it", func(t *testing.T) {
		client := newClient(t, inst, credsA(t))
		if _, err := client.InitiateUpload(context.Background(), initiateFor("taken.csv", csvFile(10))); err != nil {
			t.Fatal(err)
		}
		_, err := client.InitiateUpload(context.Background(), initiateFor("taken.csv", csvFile(10)))
		var api *wechatpay.APIError
		if !errors.As(err, &api) || api.Code != "INVALID_REQUEST" || !strings.Contains(api.Message, "taken.csv") {
			t.Fatalf("error %v, want INVALID_REQUEST naming taken.csv", err)
		}
		if _, err := newClient(t, inst, credsB(t)).InitiateUpload(context.Background(), initiateFor("taken.csv", csvFile(10))); err != nil {
			t.Fatalf("another brand using the same filename: %v", err)
		}
	})
}

func TestSandboxEnforcesPartMergeAndExpandRules(t *testing.T) {
	_, inst := startSandbox(t, false)
	ctx := context.Background()
	clientA, clientB := newClient(t, inst, credsA(t)), newClient(t, inst, credsB(t))
	file := csvFile(testPartSize + 100)
	plan, err := clientA.InitiateUpload(ctx, initiateFor("parts.csv", file))
	if err != nil {
		t.Fatal(err)
	}
	good := func(n int) wechatpay.Part { return partOf(plan.UploadID, "parts.csv", file, testPartSize, n) }
	withBytes := func(p wechatpay.Part, data string) wechatpay.Part {
		p.Size, p.Digest = int64(len(data)), sha256Hex([]byte(data))
		p.Open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(data)), nil }
		return p
	}
	expectCode := func(t *testing.T, err error, status int, code string) {
		t.Helper()
		var api *wechatpay.APIError
		if !errors.As(err, &api) || api.StatusCode != status || api.Code != code {
			t.Fatalf("error %v, want HTTP %d %s", err, status, code)
		}
	}

	t.Run("merging before every part arrived is refused", func(t *testing.T) {
		_, err := clientA.MergeParts(ctx, plan.UploadID)
		expectCode(t, err, 400, "INVALID_REQUEST")
	})
	t.Run("another brand's part is refused with NO_AUTH", func(t *testing.T) {
		_, err := clientB.UploadPart(ctx, good(1))
		expectCode(t, err, 403, "NO_AUTH")
	})
	t.Run("a part of an unknown upload is NOT_FOUND", func(t *testing.T) {
		p := good(1)
		p.UploadID = "no-such-upload"
		_, err := clientA.UploadPart(ctx, p)
		expectCode(t, err, 404, "NOT_FOUND")
	})
	t.Run("a part number beyond the plan is refused", func(t *testing.T) {
		p := good(2)
		p.Number = 3
		_, err := clientA.UploadPart(ctx, p)
		expectCode(t, err, 400, "INVALID_REQUEST")
	})
	t.Run("a first part shorter than the part size is refused", func(t *testing.T) {
		_, err := clientA.UploadPart(ctx, withBytes(good(1), "short\n"))
		expectCode(t, err, 400, "INVALID_REQUEST")
	})
	t.Run("a last part that is not exactly the remainder is refused", func(t *testing.T) {
		_, err := clientA.UploadPart(ctx, withBytes(good(2), strings.Repeat("x", 99)))
		expectCode(t, err, 400, "INVALID_REQUEST")
	})
	t.Run("a part whose digest does not match its bytes is refused", func(t *testing.T) {
		p := good(1)
		p.Digest = sha256Hex([]byte("something else"))
		_, err := clientA.UploadPart(ctx, p)
		expectCode(t, err, 400, "INVALID_REQUEST")
	})
	t.Run("a part naming a valid filename other than the upload's is accepted", func(t *testing.T) {
		p := good(1)
		p.Filename = "other-name_2.csv"
		if _, err := clientA.UploadPart(ctx, p); err != nil {
			t.Fatalf("the documentation only sets character rules for file_meta.filename: %v", err)
		}
	})
	for _, tc := range []struct{ name, filename string }{
		{"a part filename with a space is refused", "my parts.csv"},
		{"a part filename not ending in .csv is refused", "parts.txt"},
		{"a part filename of 129 characters is refused", strings.Repeat("p", 125) + ".csv"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			part := file[:testPartSize]
			meta := fmt.Sprintf(`{"filename":%q,"digest":"%s"}`, tc.filename, sha256Hex(part))
			body, ctype := multipartPart(t, meta, part)
			resp, answer := rawRequest{method: "PUT", path: "/brand/marketing/user-package/uploads/" + plan.UploadID + "/1", body: body, signedBody: &meta, contentType: ctype}.send(t, inst)
			if resp.StatusCode != 400 || !strings.Contains(answer, `"code":"PARAM_ERROR"`) || !strings.Contains(answer, "file_meta.filename") {
				t.Fatalf("answer %d %s, want 400 PARAM_ERROR about file_meta.filename", resp.StatusCode, answer)
			}
		})
	}
	t.Run("a stored part sent again with other bytes is refused", func(t *testing.T) {
		if _, err := clientA.UploadPart(ctx, good(2)); err != nil {
			t.Fatal(err)
		}
		_, err := clientA.UploadPart(ctx, withBytes(good(2), strings.Repeat("y", 100)))
		expectCode(t, err, 400, "INVALID_REQUEST")
	})
	t.Run("expanding an upload that is not merged is refused", func(t *testing.T) {
		_, err := clientA.ExpandPackage(ctx, "01000100010000000007", plan.UploadID)
		expectCode(t, err, 400, "INVALID_REQUEST")
	})
	t.Run("a merge whose file differs from the initiate digest is refused", func(t *testing.T) {
		lie := initiateFor("lie.csv", file)
		lie.Digest = sha256Hex([]byte("not the file"))
		liePlan, err := clientA.InitiateUpload(ctx, lie)
		if err != nil {
			t.Fatal(err)
		}
		for n := 1; n <= 2; n++ {
			if _, err := clientA.UploadPart(ctx, partOf(liePlan.UploadID, "lie.csv", file, testPartSize, n)); err != nil {
				t.Fatal(err)
			}
		}
		_, err = clientA.MergeParts(ctx, liePlan.UploadID)
		expectCode(t, err, 400, "INVALID_REQUEST")
	})
	t.Run("another brand cannot merge or expand the upload", func(t *testing.T) {
		if _, err := clientA.UploadPart(ctx, good(1)); err != nil {
			t.Fatal(err)
		}
		_, err := clientB.MergeParts(ctx, plan.UploadID)
		expectCode(t, err, 403, "NO_AUTH")
		if _, err := clientA.MergeParts(ctx, plan.UploadID); err != nil {
			t.Fatal(err)
		}
		_, err = clientB.ExpandPackage(ctx, "01000100010000000007", plan.UploadID)
		expectCode(t, err, 403, "NO_AUTH")
	})
	t.Run("a user_package_id that is not 20 digits is refused", func(t *testing.T) {
		resp, body := rawRequest{method: "POST", path: "/brand/marketing/user-package/user-packages/123/expand", body: `{"upload_id":"` + plan.UploadID + `"}`}.send(t, inst)
		if resp.StatusCode != 400 || !strings.Contains(body, "PARAM_ERROR") {
			t.Fatalf("answer %d %s", resp.StatusCode, body)
		}
	})
	t.Run("an expand body with upload_id twice is refused", func(t *testing.T) {
		resp, body := rawRequest{method: "POST", path: "/brand/marketing/user-package/user-packages/01000100010000000009/expand",
			body: `{"upload_id":"` + plan.UploadID + `","upload_id":"` + plan.UploadID + `"}`}.send(t, inst)
		if resp.StatusCode != 400 || !strings.Contains(body, "PARAM_ERROR") || !strings.Contains(body, "duplicate key upload_id") {
			t.Fatalf("answer %d %s, want 400 PARAM_ERROR duplicate key upload_id", resp.StatusCode, body)
		}
	})
	t.Run("a file_meta with digest twice is refused", func(t *testing.T) {
		part := file[:testPartSize]
		meta := `{"filename":"parts.csv","digest":"` + sha256Hex(part) + `","digest":"` + sha256Hex(part) + `"}`
		body, ctype := multipartPart(t, meta, part)
		resp, answer := rawRequest{method: "PUT", path: "/brand/marketing/user-package/uploads/" + plan.UploadID + "/1", body: body, signedBody: &meta, contentType: ctype}.send(t, inst)
		if resp.StatusCode != 400 || !strings.Contains(answer, "PARAM_ERROR") || !strings.Contains(answer, "duplicate key digest") {
			t.Fatalf("answer %d %s, want 400 PARAM_ERROR duplicate key digest", resp.StatusCode, answer)
		}
	})
	t.Run("a merge with a body is refused", func(t *testing.T) {
		resp, body := rawRequest{method: "POST", path: "/brand/marketing/user-package/uploads/" + plan.UploadID, body: `{}`}.send(t, inst)
		if resp.StatusCode != 400 || !strings.Contains(body, "PARAM_ERROR") {
			t.Fatalf("answer %d %s", resp.StatusCode, body)
		}
	})
}

func TestNewRefusesBadConfig(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*sandbox.Config)
	}{
		{"a part size over 20 MiB is refused", func(c *sandbox.Config) { c.PartSize = 20<<20 + 1 }},
		{"a public key ID without the PUB_KEY_ID_ prefix is refused", func(c *sandbox.Config) { c.PublicKeyID = "12345" }},
		{"a config without brands is refused", func(c *sandbox.Config) { c.Brands = nil }},
		{"a brand with a private key for public key is refused", func(c *sandbox.Config) { c.Brands[0].PublicKeyPEM = c.PrivateKeyPEM }},
		{"fault percentages over 100 are refused", func(c *sandbox.Config) {
			c.Faults = map[sandbox.Endpoint]sandbox.Faults{sandbox.EndpointMerge: {SystemErrorPercent: 60, RateLimitPercent: 50}}
		}},
		{"faults of an unknown endpoint are refused", func(c *sandbox.Config) { c.Faults = map[sandbox.Endpoint]sandbox.Faults{"upload": {}} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := brandA.Config()
			tc.mutate(&cfg)
			if _, err := sandbox.New(cfg); err == nil {
				t.Fatal("New accepted the config")
			}
		})
	}
}
