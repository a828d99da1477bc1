package uploads

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/secrets"
	"github.com/crowdpack/crowdpack/internal/sandbox"
)

// TestStalls covers every error that needs a human: each stalls with its
// reason, says what to fix, is reported Failed by kstatus, raises a
// Warning event, and makes no further calls on its own.
func TestStalls(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(h *harness, u *upv1.UserPackageUpload)
		reason string
		// wantText is part of the message that tells what to fix.
		wantText string
	}{
		{
			name:     "a missing credentials Secret stalls",
			setup:    func(h *harness, u *upv1.UserPackageUpload) { u.Spec.CredentialsRef.Name = "absent" },
			reason:   upv1.ReasonSecretNotFound,
			wantText: "Secret " + "%ns%" + "/absent named by spec.credentialsRef not found",
		},
		{
			name: "a credentials Secret without the private key stalls",
			setup: func(h *harness, u *upv1.UserPackageUpload) {
				data := identity.SecretData()
				delete(data, "apiclient_key.pem")
				h.secret("partial", data)
				u.Spec.CredentialsRef.Name = "partial"
			},
			reason:   upv1.ReasonInvalidCredentials,
			wantText: "apiclient_key.pem",
		},
		{
			name: "a malformed private key stalls",
			setup: func(h *harness, u *upv1.UserPackageUpload) {
				data := identity.SecretData()
				data["apiclient_key.pem"] = []byte("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
				h.secret("malformed", data)
				u.Spec.CredentialsRef.Name = "malformed"
			},
			reason:   upv1.ReasonInvalidCredentials,
			wantText: "apiclient_key.pem",
		},
		{
			name:     "an object that does not exist stalls",
			setup:    func(h *harness, u *upv1.UserPackageUpload) { u.Spec.Source.S3.Key = "missing.csv" },
			reason:   upv1.ReasonSourceNotFound,
			wantText: "missing.csv",
		},
		{
			name: "wrong storage credentials stall",
			setup: func(h *harness, u *upv1.UserPackageUpload) {
				h.secret("wrong-storage", map[string][]byte{secrets.KeyAccessKey: []byte(storage.AccessKey), secrets.KeySecretKey: []byte("not-the-secret-key")})
				u.Spec.Source.S3.SecretRef.Name = "wrong-storage"
			},
			reason:   upv1.ReasonSourceAccessDenied,
			wantText: "check the storage credentials",
		},
		{
			name: "invalid lines stall a Strict upload before initiate",
			setup: func(h *harness, u *upv1.UserPackageUpload) {
				h.put("bad.csv", []byte("phone\n"+strings.Repeat("0123456789abcdef0123456789abcdef\n", 3)+"12345\n"))
				u.Spec.Source.S3.Key = "bad.csv"
				u.Spec.Validation = upv1.ValidationStrict
			},
			reason:   upv1.ReasonInvalidLines,
			wantText: "2 of 5 lines are not valid Phone values (first at line 1, 5)",
		},
		{
			name: "a brand WeChat Pay does not know stalls on the signature",
			setup: func(h *harness, u *upv1.UserPackageUpload) {
				other, err := sandboxIdentity("1000000000999")
				must(h.t, err)
				h.secret("other-brand", other.SecretData())
				u.Spec.CredentialsRef.Name = "other-brand"
			},
			reason:   upv1.ReasonWeChatPayAuthFailed,
			wantText: "check apiclient_key.pem and certificate_serial_no",
		},
		{
			name: "a filename WeChat Pay already has stalls and asks for a new one",
			setup: func(h *harness, u *upv1.UserPackageUpload) {
				h.create(h.object("first", "vip.csv"))
				h.waitReady("first")
			},
			reason:   upv1.ReasonFilenameTaken,
			wantText: "set a new spec.file.filename",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			h.put("vip.csv", phoneFile(0, 100))
			u := h.object("vip", "vip.csv")
			tt.setup(h, u)
			calls := len(h.sandbox.Records())
			h.create(u)

			u = h.waitStalled("vip", tt.reason)
			ready := findCondition(u, upv1.ConditionReady)
			want := strings.ReplaceAll(tt.wantText, "%ns%", h.ns)
			if ready.Status != metav1.ConditionFalse || ready.Reason != tt.reason || !strings.Contains(ready.Message, want) {
				t.Errorf("Ready = %s %s %q, want False %s saying %q", ready.Status, ready.Reason, ready.Message, tt.reason, want)
			}
			if findCondition(u, upv1.ConditionReconciling) != nil {
				t.Error("a stalled object is still Reconciling")
			}
			if up := firstUpload(u); up != nil && up.InitiatingSince != nil && up.ID == "" && calls == len(h.sandbox.Records()) {
				t.Errorf("initiate's pending mark was left with no call made: a later reconcile would count a lost answer")
			}
			if s := kstatus(t, u); s != status.FailedStatus {
				t.Errorf("kstatus %s, want Failed", s)
			}
			h.waitEvent("vip", corev1.EventTypeWarning, tt.reason)
			// No requeue: the sandbox sees nothing more.
			seen := len(h.sandbox.Records())
			h.waitIdle()
			if now := len(h.sandbox.Records()); now != seen || (tt.reason != upv1.ReasonWeChatPayAuthFailed && tt.reason != upv1.ReasonFilenameTaken && now != calls) {
				t.Errorf("the sandbox saw %d calls before, %d at the stall and %d later: a stalled object must not retry", calls, seen, now)
			}
		})
	}
}

func TestAStallOnAMissingSecretClearsWhenTheSecretIsCreated(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.put("vip.csv", phoneFile(0, 100))
	u := h.object("vip", "vip.csv")
	u.Spec.CredentialsRef.Name = "later"
	h.create(u)
	h.waitStalled("vip", upv1.ReasonSecretNotFound)

	h.secret("later", identity.SecretData())
	h.waitReady("vip")
}

// TestTransientErrorsAreRetriedUntilReady injects each transient failure
// into initiate; the object ends Ready with a single session.
func TestTransientErrorsAreRetriedUntilReady(t *testing.T) {
	tests := []struct {
		name  string
		fault sandbox.Fault
		times int
		// sessions is how many sessions the sandbox ends up with.
		sessions int
	}{
		{name: "a 500 SYSTEM_ERROR is retried", fault: sandbox.FaultSystemError, times: 2, sessions: 1},
		{name: "a 503 SERVICE_UNAVAILABLE is retried", fault: sandbox.FaultUnavailable, times: 1, sessions: 1},
		{name: "a 429 is retried after its Retry-After", fault: sandbox.FaultRateLimit, times: 1, sessions: 1},
		{name: "a 202 is retried", fault: sandbox.FaultAccepted, times: 1, sessions: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{noManager: true})
			must(t, h.sandbox.SetFaults(sandbox.EndpointInitiate, sandbox.Faults{RetryAfterSeconds: 1}))
			must(t, h.sandbox.FailNext(sandbox.EndpointInitiate, tt.times, tt.fault))
			h.startManager(nil)
			h.put("vip.csv", phoneFile(0, 100))
			u := h.object("vip", "vip.csv")
			u.Spec.UploadParts = ptrTo(false)
			h.create(u)

			u = h.waitReady("vip")
			if n := h.sandbox.CountSucceeded(sandbox.EndpointInitiate); n != tt.sessions {
				t.Errorf("sandbox created %d sessions, want %d", n, tt.sessions)
			}
			if got := lastInitiate(h).UploadID; got != firstUpload(u).ID {
				t.Errorf("status upload id %q, want the last session %q", firstUpload(u).ID, got)
			}
		})
	}
}

// TestALostInitiateAnswerIsRetriedOnceAndCounted loses initiate's answer
// after the sandbox created the session. The retry is refused because
// WeChat Pay keeps the lost call's filename: with an explicit filename the
// object stalls naming it, and a new filename (a spec change) completes the
// upload. (A default filename moves on by itself: TestEveryLostAnswerConverges.)
func TestALostInitiateAnswerIsRetriedOnceAndCounted(t *testing.T) {
	h := newHarness(t, harnessOptions{noManager: true})
	must(t, h.sandbox.FailNext(sandbox.EndpointInitiate, 1, sandbox.FaultLostResponse))
	h.startManager(nil)
	h.put("vip.csv", phoneFile(0, 100))
	u := h.object("vip", "vip.csv")
	u.Spec.File.Filename = "vip.csv"
	u.Spec.UploadParts = ptrTo(false)
	h.create(u)

	u = h.waitStalled("vip", upv1.ReasonFilenameTaken)
	if !strings.Contains(findCondition(u, upv1.ConditionReady).Message, "vip.csv") {
		t.Errorf("the stall does not name the filename: %s", findCondition(u, upv1.ConditionReady).Message)
	}
	if firstUpload(u).UnknownOutcomes != 1 {
		t.Errorf("unknownOutcomes = %d, want 1", firstUpload(u).UnknownOutcomes)
	}
	h.waitEvent("vip", corev1.EventTypeWarning, upv1.ReasonOutcomeUnknown)

	h.update("vip", func(u *upv1.UserPackageUpload) { u.Spec.File.Filename = "vip-2.csv" })
	u = h.waitReady("vip")
	if n := h.sandbox.CountSucceeded(sandbox.EndpointInitiate); n != 2 {
		t.Errorf("sandbox created %d sessions, want 2 (the orphan and the final one)", n)
	}
	if got := lastInitiate(h).UploadID; got != firstUpload(u).ID {
		t.Errorf("status upload id %q, want the last session %q", firstUpload(u).ID, got)
	}
}

func TestRetryingSaysSoInReconciling(t *testing.T) {
	h := newHarness(t, harnessOptions{noManager: true})
	must(t, h.sandbox.FailNext(sandbox.EndpointInitiate, 1000, sandbox.FaultUnavailable))
	h.startManager(nil)
	h.put("vip.csv", phoneFile(0, 100))
	h.create(h.object("vip", "vip.csv"))

	u := h.waitFor("vip", 30*time.Second, "retrying", func(u *upv1.UserPackageUpload) bool {
		c := findCondition(u, upv1.ConditionReconciling)
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == upv1.ReasonRetrying
	})
	ready := findCondition(u, upv1.ConditionReady)
	if ready.Reason != upv1.ReasonWeChatPayUnavailable || !strings.Contains(ready.Message, "retrying") {
		t.Errorf("Ready = %s %q, want WeChatPayUnavailable saying it retries", ready.Reason, ready.Message)
	}
	if s := kstatus(t, u); s != status.InProgressStatus {
		t.Errorf("kstatus %s, want InProgress", s)
	}
}

// TestAFailedStatusWriteCausesNoSecondInitiate makes the API server refuse
// a status write around initiate: a conflict on the marker (a stale cache)
// or on the answer, or an outage while the answer is written.
func TestAFailedStatusWriteCausesNoSecondInitiate(t *testing.T) {
	gr := schema.GroupResource{Group: upv1.GroupVersion.Group, Resource: "userpackageuploads"}
	onMarker := func(u *upv1.UserPackageUpload) bool {
		up := firstUpload(u)
		return up != nil && up.InitiatingSince != nil
	}
	onAnswer := func(u *upv1.UserPackageUpload) bool { up := firstUpload(u); return up != nil && up.ID != "" }
	tests := []struct {
		name string
		// on picks the status updates to refuse, times times, with err.
		on    func(u *upv1.UserPackageUpload) bool
		times int
		err   func(name string) error
	}{
		{
			name: "a conflict on the marker write", on: onMarker, times: 1,
			err: func(name string) error { return apierrors.NewConflict(gr, name, nil) },
		},
		{
			name: "a conflict on the answer write", on: onAnswer, times: 1,
			err: func(name string) error { return apierrors.NewConflict(gr, name, nil) },
		},
		{
			name: "an API server outage while the answer is written", on: onAnswer, times: 4,
			err: func(string) error { return apierrors.NewServiceUnavailable("the API server is restarting") },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var refused atomic.Int32
			wrap := func(c client.Client) client.Client {
				return &statusHook{Client: c, hook: func(obj client.Object) error {
					if u, ok := obj.(*upv1.UserPackageUpload); ok && tt.on(u) && refused.Load() < int32(tt.times) {
						refused.Add(1)
						return tt.err(u.Name)
					}
					return nil
				}}
			}
			h := newHarness(t, harnessOptions{wrapClient: wrap})
			h.put("vip.csv", phoneFile(0, 100))
			u := h.object("vip", "vip.csv")
			u.Spec.UploadParts = ptrTo(false)
			h.create(u)

			u = h.waitReady("vip")
			if n := refused.Load(); n != int32(tt.times) {
				t.Fatalf("%d writes refused, want %d", n, tt.times)
			}
			if n := h.sandbox.CountSucceeded(sandbox.EndpointInitiate); n != 1 {
				t.Errorf("initiate called %d times, want once", n)
			}
			if firstUpload(u).UnknownOutcomes != 0 {
				t.Errorf("unknownOutcomes = %d, want 0", firstUpload(u).UnknownOutcomes)
			}
		})
	}
}

func (h *harness) secret(name string, data map[string][]byte) {
	h.t.Helper()
	must(h.t, kube.Client.Create(h.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns}, Data: data}))
}

func lastInitiate(h *harness) sandbox.Record {
	var last sandbox.Record
	for _, r := range h.sandbox.Records() {
		if r.Endpoint == sandbox.EndpointInitiate && r.Succeeded() {
			last = r
		}
	}
	return last
}

func ptrTo[T any](v T) *T { return &v }

func sandboxIdentity(brand string) (*sandbox.Identity, error) { return sandbox.NewIdentity(brand) }

// statusHook lets a test refuse status updates and patches before they
// reach the API server; a patch is shown to the hook as the fields it sets.
type statusHook struct {
	client.Client
	hook func(client.Object) error
}

func (c *statusHook) Status() client.SubResourceWriter {
	return &statusUpdateHook{SubResourceWriter: c.Client.Status(), hook: c.hook}
}

type statusUpdateHook struct {
	client.SubResourceWriter
	hook func(client.Object) error
}

func (w *statusUpdateHook) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	if err := w.hook(obj); err != nil {
		return err
	}
	return w.SubResourceWriter.Update(ctx, obj, opts...)
}

func (w *statusUpdateHook) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	data, err := patch.Data(obj)
	if err != nil {
		return err
	}
	fields := obj.DeepCopyObject().(client.Object)
	if err := json.Unmarshal(data, fields); err != nil {
		return err
	}
	if err := w.hook(fields); err != nil {
		return err
	}
	return w.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}
