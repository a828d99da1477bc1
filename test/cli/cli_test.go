package cli_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/cli"
)

// rawExport is a CRM export of n raw mobile numbers in several spellings,
// with a header row, an empty line and a line that is no number.
func rawExport(n int) []byte {
	var b strings.Builder
	b.WriteString("mobile\r\n")
	for i := 0; i < n; i++ {
		switch {
		case i == 7:
			b.WriteString("not a number\r\n")
		case i == 100:
			b.WriteString("\r\n")
		case i%3 == 0:
			fmt.Fprintf(&b, "+86 138-%04d-%04d\r\n", i/10000, i%10000)
		default:
			fmt.Fprintf(&b, "139%08d\r\n", i)
		}
	}
	return []byte(b.String())
}

// md5Export is n MD5 lines, one of them broken.
func md5Export(n int) []byte {
	var b strings.Builder
	for i := 0; i < n; i++ {
		sum := md5.Sum(fmt.Appendf(nil, "137%08d", i))
		line := hex.EncodeToString(sum[:])
		if i == 3 {
			line = line[:31]
		}
		b.WriteString(line + "\n")
	}
	return []byte(b.String())
}

// The preview of a local file shows exactly what the operator records in
// status.content and status.uploads[] for the same bytes and spec.file:
// line checks, the cut, filenames, line and byte ranges, sizes and digests.
func TestPreviewShowsWhatTheOperatorRecords(t *testing.T) {
	requireCluster(t)
	tn := newTenant(t)
	cases := []struct {
		name, key string
		data      []byte
		file      upv1.FileSpec
		flags     []string
		uploads   int
	}{
		{"a raw export hashed, without its header, in three uploads", "crm_members.csv", rawExport(2500),
			upv1.FileSpec{DataType: upv1.DataTypePhone, Hashing: upv1.HashingMD5, SkipHeaderRow: true, MaxLinesPerUpload: ptr.To[int32](1000)},
			[]string{"--data-type", "Phone", "--hashing", "MD5", "--skip-header-row", "--max-lines-per-upload", "1000"}, 3},
		{"an MD5 file in one upload, with an invalid line", "vip.csv", md5Export(1500),
			upv1.FileSpec{DataType: upv1.DataTypePhone},
			[]string{"--data-type", "Phone"}, 1},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tc.key)
			must(t, os.WriteFile(path, tc.data, 0o600))
			r := runAs(t, "", false, append([]string{"preview", path, "-o", "json"}, tc.flags...)...)
			if r.err != nil {
				t.Fatal(r.err)
			}
			var pv cli.Preview
			must(t, json.Unmarshal([]byte(r.out), &pv))
			if len(pv.Uploads) != tc.uploads {
				t.Fatalf("preview: %d uploads, want %d", len(pv.Uploads), tc.uploads)
			}

			name := fmt.Sprintf("preview-%d", i)
			tn.put(tc.key, tc.data)
			tn.create(tn.upload(name, tc.key, tc.file))
			u := tn.waitReady(name)
			if diff := cmp.Diff(u.Status.Content, pv.Content); diff != "" {
				t.Errorf("status.content (-operator +preview):\n%s", diff)
			}
			if u.Status.Source.Digest != pv.Digest || u.Status.Source.Size != pv.Size {
				t.Errorf("file read: operator %s (%d bytes), preview %s (%d bytes)", u.Status.Source.Digest, u.Status.Source.Size, pv.Digest, pv.Size)
			}
			chunk := func(up upv1.UploadStatus) upv1.UploadStatus {
				return upv1.UploadStatus{Index: up.Index, Filename: up.Filename, FirstLine: up.FirstLine, LastLine: up.LastLine,
					Start: up.Start, End: up.End, Lines: up.Lines, Size: up.Size, Digest: up.Digest}
			}
			var operator, preview []upv1.UploadStatus
			for _, up := range u.Status.Uploads {
				operator = append(operator, chunk(up))
			}
			for _, up := range pv.Uploads {
				preview = append(preview, chunk(up))
			}
			if diff := cmp.Diff(operator, preview); diff != "" {
				t.Errorf("status.uploads (-operator +preview):\n%s", diff)
			}

			// The text form says the same, and never a line's content.
			r = runAs(t, "", false, append([]string{"preview", path}, tc.flags...)...)
			for _, up := range pv.Uploads {
				if !strings.Contains(r.out, up.Digest) || !strings.Contains(r.out, up.Filename) {
					t.Errorf("preview text lacks upload %d (%s, %s)", up.Index, up.Filename, up.Digest)
				}
			}
			if strings.Contains(r.out, "not a number") || strings.Contains(r.out, "139000000") {
				t.Error("preview printed a line's content")
			}
		})
	}
}

func TestPreviewRefusesWhatAdmissionRefuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ids.csv")
	must(t, os.WriteFile(path, []byte("oAbc123456789\n"), 0o600))
	for _, flags := range [][]string{
		{"--data-type", "OpenID", "--hashing", "MD5"},
		{"--data-type", "Email"},
		{"--data-type", "Phone", "--max-lines-per-upload", "10"},
		{},
	} {
		if r := runAs(t, "", false, append([]string{"preview", path}, flags...)...); r.err == nil {
			t.Errorf("preview %v succeeded", flags)
		}
	}
}

// get prints the columns of the CRDs' printer columns, YAML and JSON that
// read back as the objects, and says that an absent kind is not installed.
func TestGet(t *testing.T) {
	requireCluster(t)
	tn := newTenant(t)
	// WeChat Pay takes a filename once per brand: each test has its own.
	tn.put("get_vip.csv", md5Export(1200))
	tn.create(tn.upload("vip", "get_vip.csv", upv1.FileSpec{DataType: upv1.DataTypePhone}))
	u := tn.waitReady("vip")

	r := run(t, "get", "uploads", "-n", tn.ns)
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME READY STATUS UPLOADS PARTS BRAND AGE" {
		t.Fatalf("get uploads:\n%s", r.out)
	}
	for _, want := range []string{"vip", "True", readyMessage(u), u.Status.Summary.UploadsProgress, u.Status.Summary.PartsProgress} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
	// The same cells as the API server's own table of the CRD's printer
	// columns (what kubectl get prints), AGE aside.
	r = run(t, "get", "uploads", "-n", tn.ns, "-o", "wide")
	header, cells := serverTable(t, "/apis/wechatpay.crowdpack.io/v1alpha1/namespaces/"+tn.ns+"/userpackageuploads")
	lines = strings.Split(strings.TrimSpace(r.out), "\n")
	columns := regexp.MustCompile(`\s{3,}`)
	if got := columns.Split(lines[0], -1); !cmp.Equal(got, header) {
		t.Errorf("header %q, the API server's %q", got, header)
	}
	if got := columns.Split(lines[1], -1); len(got) != len(cells[0]) {
		t.Errorf("row %q, the API server's %q", got, cells[0])
	} else {
		for i := range got {
			if header[i] != "AGE" && got[i] != cells[0][i] {
				t.Errorf("column %s: %q, the API server's %q", header[i], got[i], cells[0][i])
			}
		}
	}

	r = run(t, "get", "upu", "-A", "-o", "wide")
	if !strings.HasPrefix(r.out, "NAMESPACE") || !strings.Contains(r.out, tn.ns) || !strings.Contains(r.out, u.Status.Source.Digest) {
		t.Errorf("get upu -A -o wide:\n%s", r.out)
	}

	r = run(t, "get", "upload", "vip", "-n", tn.ns, "-o", "yaml")
	var back upv1.UserPackageUpload
	must(t, yaml.Unmarshal([]byte(r.out), &back))
	if back.Kind != "UserPackageUpload" || back.APIVersion != upv1.GroupVersion.String() || back.Status.Source.Digest != u.Status.Source.Digest {
		t.Errorf("get -o yaml read back as %s %s, digest %v", back.APIVersion, back.Kind, back.Status.Source)
	}
	r = run(t, "get", "uploads", "-n", tn.ns, "-o", "json")
	var list struct {
		Kind  string                   `json:"kind"`
		Items []upv1.UserPackageUpload `json:"items"`
	}
	must(t, json.Unmarshal([]byte(r.out), &list))
	if list.Kind != "List" || len(list.Items) != 1 || list.Items[0].Name != "vip" {
		t.Errorf("get -o json: %s with %d items", list.Kind, len(list.Items))
	}

	r = run(t, "get", "upload", "absent", "-n", tn.ns)
	if r.err == nil || !strings.Contains(r.err.Error(), "not found") {
		t.Errorf("get of an absent upload: %v", r.err)
	}

	// UserPackageSync is not served by this release: said so, by discovery.
	r = run(t, "get", "syncs", "-n", tn.ns)
	if r.err == nil || !strings.Contains(r.err.Error(), "UserPackageSync kind (userpackagesyncs, short name upsync) is not installed") {
		t.Errorf("get syncs: %v", r.err)
	}
}

func TestGetBrands(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	secret := identitySecret("brand-acme", brandNamespace)
	must(t, kube.Client.Create(ctx, secret))
	brand := &upv1.WeChatPayBrand{ObjectMeta: metav1.ObjectMeta{Name: "acme"}}
	brand.Spec.CredentialsSecretRef.Name = "brand-acme"
	brand.Spec.AllowedNamespaces.From = upv1.NamespacesFromAll
	must(t, kube.Client.Create(ctx, brand))
	var r result
	waitUntil(t, "the brand is Ready", func() bool {
		r = run(t, "get", "brands")
		return regexp.MustCompile(`(?m)^acme\s+True\s+.*` + brandID + `\s+All\s+`).MatchString(r.out)
	})
	if !strings.HasPrefix(r.out, "NAME") || !strings.Contains(strings.Join(strings.Fields(strings.Split(r.out, "\n")[0]), " "), "NAME READY STATUS BRAND ID ALLOWED AGE") {
		t.Errorf("get brands:\n%s", r.out)
	}
}

// status shows one upload of a set on one screen: kstatus, conditions, the
// line checks, each upload with its parts bar, merge and expand state, and
// the last events.
func TestStatus(t *testing.T) {
	requireCluster(t)
	tn := newTenant(t)
	tn.put("crm.csv", rawExport(2500))
	tn.create(tn.upload("crm", "crm.csv", upv1.FileSpec{DataType: upv1.DataTypePhone, Hashing: upv1.HashingMD5,
		SkipHeaderRow: true, MaxLinesPerUpload: ptr.To[int32](1000)}))
	u := tn.waitReady("crm")
	waitUntil(t, "the Succeeded event is listed", func() bool {
		return strings.Contains(run(t, "status", "crm", "-n", tn.ns).out, "Succeeded")
	})
	r := run(t, "status", "upload/crm", "-n", tn.ns)
	for _, want := range []string{
		"UserPackageUpload " + tn.ns + "/crm", "Status:      Current", "Conditions:", "Merged", "Expanded",
		"invalid 1 (first at line 9)", "Uploads (3/3 finished", "crm-001.csv", "crm-002.csv", "crm-003.csv",
		"[####################]", "01000100010000000007", "Events:", "Succeeded",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("status lacks %q", want)
		}
	}
	for _, up := range u.Status.Uploads {
		if !strings.Contains(r.out, fmt.Sprintf("%d/%d", up.PartsDone, up.PartCount)) {
			t.Errorf("status lacks the parts of upload %d", up.Index)
		}
	}
	if strings.Contains(r.out, "not a number") {
		t.Error("status printed a line's content")
	}
	r = run(t, "status", "sync/nightly", "-n", tn.ns)
	if r.err == nil || !apierrors.IsNotFound(r.err) {
		t.Errorf("status of a sync that does not exist: %v", r.err)
	}
}

// status of a sync shows what it follows, the revision it is in step with
// and its runs, with the members each added and those who left.
func TestStatusOfASync(t *testing.T) {
	requireCluster(t)
	tn := newTenant(t)
	ctx := context.Background()
	s := &upv1.UserPackageSync{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: tn.ns},
		Spec: upv1.UserPackageSyncSpec{
			Source:         upv1.SyncSource{S3: &upv1.SyncS3Source{S3Source: upv1.S3Source{Endpoint: "minio:9000", Bucket: tn.bucket}, Prefix: "exports/vip/"}},
			File:           upv1.FileSpec{PackageType: upv1.PackageTypeExposure, DataType: upv1.DataTypePhone, Description: "VIP customers, one export a day"},
			CredentialsRef: &upv1.SecretReference{Name: "wechatpay-brand"}, UserPackageID: "01000100010000000007",
		},
	}
	s.Spec.Suspend = true // the suite's manager leaves it be
	must(t, kube.Client.Create(ctx, s))
	at := metav1.NewTime(time.Now().Add(-time.Hour))
	status := upv1.UserPackageSyncStatus{
		LastSyncedRevision: &upv1.SyncedRevision{Revision: upv1.Revision{ID: "k2@e2", Key: "exports/vip/2026-12-02.csv"},
			Digest: "sha256:" + strings.Repeat("ab", 32), Members: 205000, Child: "nightly-2", At: at},
		History: []upv1.SyncRun{
			{Revision: "k2@e2", Key: "exports/vip/2026-12-02.csv", Child: "nightly-2", Result: upv1.SyncResultSynced,
				Members: 205000, Added: 10000, Unchanged: 195000, Left: 5000, At: at},
			{Revision: "k1@e1", Key: "exports/vip/2026-12-01.csv", Child: "nightly-1", Result: upv1.SyncResultSynced, Members: 200000, Added: 200000, At: at},
		},
	}
	must(t, retry.RetryOnConflict(retry.DefaultRetry, func() error { // the manager writes it too
		if err := kube.Client.Get(ctx, client.ObjectKeyFromObject(s), s); err != nil {
			return err
		}
		s.Status.LastSyncedRevision, s.Status.History = status.LastSyncedRevision, status.History
		return kube.Client.Status().Update(ctx, s)
	}))

	r := run(t, "status", "sync/nightly", "-n", tn.ns)
	if r.err != nil {
		t.Fatalf("status of a sync: %v", r.err)
	}
	for _, want := range []string{
		"UserPackageSync " + tn.ns + "/nightly", "the newest object under s3://" + tn.bucket + "/exports/vip/",
		"Last synced: exports/vip/2026-12-02.csv", "205000 members", "Runs (newest first", "LEFT",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("status of a sync lacks %q", want)
		}
	}
	if !regexp.MustCompile(`exports/vip/2026-12-02.csv\s+Synced\s+205000\s+10000\s+195000\s+5000\s`).MatchString(r.out) {
		t.Error("status of a sync lacks the newest run's members, added, unchanged and left")
	}
}

// reconcile, suspend and resume set what the Argo CD actions set; reconcile
// --wait waits with kstatus and exits non-zero on a stall, a suspended
// object or a timeout.
func TestReconcileSuspendResume(t *testing.T) {
	requireCluster(t)
	tn := newTenant(t)
	tn.put("reconcile_vip.csv", md5Export(3000))
	tn.create(tn.upload("vip", "reconcile_vip.csv", upv1.FileSpec{DataType: upv1.DataTypePhone}))
	before := tn.waitReady("vip")

	r := run(t, "reconcile", "vip", "-n", tn.ns, "--wait", "--timeout", "1m")
	if r.code != 0 {
		t.Fatalf("reconcile --wait: exit %d, %v", r.code, r.err)
	}
	u := tn.get("vip")
	at := u.Annotations[upv1.ReconcileRequestAnnotation]
	if at == "" || u.Status.LastHandledReconcileAt != at {
		t.Errorf("requestedAt %q, lastHandledReconcileAt %q", at, u.Status.LastHandledReconcileAt)
	}
	if u.Status.Uploads[0].ID != before.Status.Uploads[0].ID {
		t.Error("a reconcile of an unchanged file started a new upload")
	}
	if strings.Contains(r.out, "\r") || !strings.Contains(r.out, "is Ready") {
		t.Errorf("not a terminal: want plain lines, got %q", r.out)
	}
	// On a terminal: a bar redrawn in place.
	r = runAs(t, kubeconfig, true, "reconcile", "vip", "-n", tn.ns, "--wait")
	if r.code != 0 || !strings.Contains(r.out, "\r\033[K[") || !strings.Contains(r.out, "parts ") {
		t.Errorf("on a terminal: exit %d, output %q", r.code, r.out)
	}

	r = run(t, "suspend", "vip", "-n", tn.ns)
	if r.err != nil || !tn.get("vip").Spec.Suspend {
		t.Fatalf("suspend: %v", r.err)
	}
	tn.waitFor("vip", "Suspended", func(u *upv1.UserPackageUpload) bool {
		return strings.Contains(readyMessage(u), "suspend") || reason(u) == upv1.ReasonSuspended
	})
	r = run(t, "reconcile", "vip", "-n", tn.ns, "--wait", "--timeout", "20s")
	if r.code != cli.ExitStalled || !strings.Contains(r.err.Error(), "suspended") {
		t.Errorf("reconcile --wait of a suspended object: exit %d, %v", r.code, r.err)
	}
	r = run(t, "resume", "vip", "-n", tn.ns)
	if r.err != nil || tn.get("vip").Spec.Suspend {
		t.Fatalf("resume: %v", r.err)
	}
	tn.waitReady("vip")

	// A stall: a credentials Secret that does not exist.
	stalled := tn.upload("orphan", "reconcile_vip.csv", upv1.FileSpec{DataType: upv1.DataTypePhone, Filename: "orphan.csv"})
	stalled.Spec.CredentialsRef.Name = "absent"
	tn.create(stalled)
	r = run(t, "reconcile", "orphan", "-n", tn.ns, "--wait", "--timeout", "1m")
	if r.code != cli.ExitStalled || !strings.Contains(r.err.Error(), "stalled") || !strings.Contains(r.err.Error(), "absent") {
		t.Errorf("reconcile --wait of a stalling object: exit %d, %v", r.code, r.err)
	}
	r = run(t, "reconcile", "vip", "-n", tn.ns, "--wait", "--timeout", "1ns")
	if r.code != cli.ExitTimeout {
		t.Errorf("reconcile --wait --timeout 1ns: exit %d, %v", r.code, r.err)
	}
	r = run(t, "reconcile", "absent", "-n", tn.ns)
	if r.err == nil {
		t.Error("reconcile of an absent object succeeded")
	}
}

func readyMessage(u *upv1.UserPackageUpload) string {
	for _, c := range u.Status.Conditions {
		if c.Type == upv1.ConditionReady {
			return c.Message
		}
	}
	return ""
}

func reason(u *upv1.UserPackageUpload) string {
	for _, c := range u.Status.Conditions {
		if c.Type == upv1.ConditionReady {
			return c.Reason
		}
	}
	return ""
}

// serverTable is the API server's table of path's objects, every column
// (kubectl get -o wide): upper-case column names and cells as kubectl
// prints them (<none> for a missing value).
func serverTable(t *testing.T, path string) ([]string, [][]string) {
	t.Helper()
	hc, err := rest.HTTPClientFor(kube.Config)
	must(t, err)
	req, err := http.NewRequest(http.MethodGet, strings.TrimSuffix(kube.Config.Host, "/")+path, nil)
	must(t, err)
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := hc.Do(req)
	must(t, err)
	defer resp.Body.Close()
	var table metav1.Table
	must(t, json.NewDecoder(resp.Body).Decode(&table))
	var header []string
	for _, c := range table.ColumnDefinitions {
		header = append(header, strings.ToUpper(c.Name))
	}
	var rows [][]string
	for _, row := range table.Rows {
		var cells []string
		for _, c := range row.Cells {
			if c == nil {
				cells = append(cells, "<none>")
			} else {
				cells = append(cells, fmt.Sprint(c))
			}
		}
		rows = append(rows, cells)
	}
	if len(rows) == 0 {
		t.Fatalf("the API server's table of %s has no row", path)
	}
	return header, rows
}
