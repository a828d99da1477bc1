package uploads

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/sandbox"
)

const (
	gitopsPartSize = 64 << 10
	gitopsParts    = 6 // of phoneFile(0, 10_000): 330,000 bytes
	packageA       = "01000100010000000007"
	packageB       = "01000100010000000008"
)

// calls counts the calls the sandbox processed successfully, by endpoint.
func (h *harness) calls() map[sandbox.Endpoint]int {
	counts := map[sandbox.Endpoint]int{}
	for _, r := range h.sandbox.Records() {
		if r.Succeeded() {
			counts[r.Endpoint]++
		}
	}
	return counts
}

// callsSince is what the sandbox processed after before was taken.
func (h *harness) callsSince(before map[sandbox.Endpoint]int) map[sandbox.Endpoint]int {
	delta := map[sandbox.Endpoint]int{}
	for e, n := range h.calls() {
		if d := n - before[e]; d != 0 {
			delta[e] = d
		}
	}
	return delta
}

// requestReconcile sets reconcile.fluxcd.io/requestedAt, as `flux reconcile`
// and the Argo CD action do, and waits until it is handled.
func (h *harness) requestReconcile(name, at string) *upv1.UserPackageUpload {
	h.t.Helper()
	h.update(name, func(u *upv1.UserPackageUpload) {
		if u.Annotations == nil {
			u.Annotations = map[string]string{}
		}
		u.Annotations[upv1.ReconcileRequestAnnotation] = at
	})
	return h.waitFor(name, 60*time.Second, "reconciled on request", func(u *upv1.UserPackageUpload) bool {
		return u.Status.LastHandledReconcileAt == at && conditionIs(u, upv1.ConditionReady, metav1.ConditionTrue)
	})
}

func (h *harness) suspendAndResume(name string) *upv1.UserPackageUpload {
	h.t.Helper()
	h.update(name, func(u *upv1.UserPackageUpload) { u.Spec.Suspend = true })
	h.waitFor(name, 30*time.Second, "suspended", func(u *upv1.UserPackageUpload) bool {
		c := findCondition(u, upv1.ConditionReady)
		return c != nil && c.Reason == upv1.ReasonSuspended && c.ObservedGeneration == u.Generation
	})
	h.update(name, func(u *upv1.UserPackageUpload) { u.Spec.Suspend = false })
	return h.waitReady(name)
}

// TestRoutineGitOpsEditsNeverRepeatAFinishedCall takes an upload to
// Ready, then suspends, resumes and requests a reconcile of the same file,
// as the Argo CD actions and `flux reconcile` do: WeChat Pay sees each call
// once, whether the filename is explicit or defaulted.
func TestRoutineGitOpsEditsNeverRepeatAFinishedCall(t *testing.T) {
	for _, filename := range []string{"vip_2026_11.csv", ""} {
		t.Run("filename "+cmpOr(filename, "defaulted"), func(t *testing.T) {
			h := newHarness(t, harnessOptions{partSize: gitopsPartSize})
			h.put("vip.csv", phoneFile(0, 10_000))
			u := h.object("vip", "vip.csv")
			u.Spec.File.Filename = filename
			u.Spec.UserPackageID = packageA
			h.create(u)
			first := h.waitReady("vip")

			h.suspendAndResume("vip")
			last := h.requestReconcile("vip", "2026-11-30T10:00:00Z")

			want := map[sandbox.Endpoint]int{sandbox.EndpointInitiate: 1, sandbox.EndpointUploadPart: gitopsParts, sandbox.EndpointMerge: 1, sandbox.EndpointExpand: 1}
			if diff := cmp.Diff(want, h.calls()); diff != "" {
				t.Errorf("calls at the sandbox (-want +got):\n%s", diff)
			}
			if firstUpload(last).ID != firstUpload(first).ID || len(last.Status.History) != 0 {
				t.Errorf("upload %s (history %+v), want still %s", firstUpload(last).ID, last.Status.History, firstUpload(first).ID)
			}
			succeeded := 0
			for _, e := range h.events("vip") {
				if e.Reason == upv1.ReasonSucceeded {
					succeeded++
				}
			}
			if succeeded != 1 {
				t.Errorf("%d Succeeded events, want 1: routine edits that call nothing say nothing", succeeded)
			}
		})
	}
}

func cmpOr(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}

// TestEachEditCausesOnlyTheCallsItNeeds: an upload is what WeChat Pay
// receives, so only a change of the bytes, the initiate fields or the brand
// starts a new one; every other edit continues the upload in hand.
func TestEachEditCausesOnlyTheCallsItNeeds(t *testing.T) {
	full := map[sandbox.Endpoint]int{sandbox.EndpointInitiate: 1, sandbox.EndpointUploadPart: gitopsParts, sandbox.EndpointMerge: 1}
	tests := []struct {
		name    string
		initial func(*upv1.UserPackageUpload)
		edit    func(*harness, *upv1.UserPackageUpload)
		want    map[sandbox.Endpoint]int
		// newUpload tells that the edit starts a new upload session.
		newUpload bool
	}{
		{
			name: "a stricter validation is judged on the recorded line checks, with no call",
			edit: func(_ *harness, u *upv1.UserPackageUpload) { u.Spec.Validation = upv1.ValidationStrict },
			want: map[sandbox.Endpoint]int{},
		},
		{
			name:    "uploadParts turned on sends the parts of the same session and merges them",
			initial: func(u *upv1.UserPackageUpload) { u.Spec.UploadParts = ptrTo(false) },
			edit:    func(_ *harness, u *upv1.UserPackageUpload) { u.Spec.UploadParts = ptrTo(true) },
			want:    map[sandbox.Endpoint]int{sandbox.EndpointUploadPart: gitopsParts, sandbox.EndpointMerge: 1},
		},
		{
			name: "a userPackageID set after the merge expands that package with the same upload",
			edit: func(_ *harness, u *upv1.UserPackageUpload) { u.Spec.UserPackageID = packageA },
			want: map[sandbox.Endpoint]int{sandbox.EndpointExpand: 1},
		},
		{
			name:    "a changed userPackageID expands the new package only",
			initial: func(u *upv1.UserPackageUpload) { u.Spec.UserPackageID = packageA },
			edit:    func(_ *harness, u *upv1.UserPackageUpload) { u.Spec.UserPackageID = packageB },
			want:    map[sandbox.Endpoint]int{sandbox.EndpointExpand: 1},
		},
		{
			name: "a source moved to a copy of the same bytes reuses the upload",
			initial: func(u *upv1.UserPackageUpload) {
				u.Spec.File.Filename = "vip_2026_11.csv"
			},
			edit: func(h *harness, u *upv1.UserPackageUpload) {
				h.put("copy/vip.csv", phoneFile(0, 10_000))
				u.Spec.Source.S3.Key = "copy/vip.csv"
			},
			want: map[sandbox.Endpoint]int{},
		},
		{
			name: "a new description starts a new upload",
			edit: func(_ *harness, u *upv1.UserPackageUpload) {
				u.Spec.File.Description = "customers who bought three times in 90 days"
			},
			want:      full,
			newUpload: true,
		},
		{
			name:      "a new filename starts a new upload",
			edit:      func(_ *harness, u *upv1.UserPackageUpload) { u.Spec.File.Filename = "vip_2026_12.csv" },
			want:      full,
			newUpload: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{partSize: gitopsPartSize})
			h.put("vip.csv", phoneFile(0, 10_000))
			u := h.object("vip", "vip.csv")
			if tt.initial != nil {
				tt.initial(u)
			}
			h.create(u)
			first := h.waitReady("vip")
			before := h.calls()

			h.update("vip", func(u *upv1.UserPackageUpload) { tt.edit(h, u) })
			last := h.waitReady("vip")

			if diff := cmp.Diff(tt.want, h.callsSince(before)); diff != "" {
				t.Errorf("calls the edit caused (-want +got):\n%s", diff)
			}
			if renewed := firstUpload(last).ID != firstUpload(first).ID; renewed != tt.newUpload {
				t.Errorf("upload %s after %s: new upload %v, want %v", firstUpload(last).ID, firstUpload(first).ID, renewed, tt.newUpload)
			}
		})
	}
}

func TestAChangedUserPackageIDListsBothExpandedPackages(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.put("vip.csv", phoneFile(0, 100))
	u := h.object("vip", "vip.csv")
	u.Spec.UserPackageID = packageA
	h.create(u)
	h.waitReady("vip")

	h.update("vip", func(u *upv1.UserPackageUpload) { u.Spec.UserPackageID = packageB })
	u = h.waitReady("vip")
	h.update("vip", func(u *upv1.UserPackageUpload) { u.Spec.UserPackageID = packageA })
	u = h.waitReady("vip")

	var got []string
	for _, e := range firstUpload(u).Expanded {
		got = append(got, e.UserPackageID)
	}
	if diff := cmp.Diff([]string{packageA, packageB}, got); diff != "" {
		t.Errorf("expanded packages (-want +got):\n%s", diff)
	}
	if n := h.calls()[sandbox.EndpointExpand]; n != 2 {
		t.Errorf("%d expands, want 2: back to package A must not expand it again", n)
	}
}

func TestASpecChangeStartsANewUploadWithTheNewDigest(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.put("a.csv", phoneFile(0, 100))
	h.put("b.csv", phoneFile(100, 100))
	u := h.object("vip", "a.csv")
	u.Spec.UploadParts = ptrTo(false)
	h.create(u)
	first := h.waitReady("vip")

	h.update("vip", func(u *upv1.UserPackageUpload) { u.Spec.Source.S3.Key = "b.csv" })
	second := h.waitReady("vip")

	if firstUpload(second).ID == firstUpload(first).ID || second.Status.Source.Digest == first.Status.Source.Digest {
		t.Fatalf("no new upload: %s/%s then %s/%s", firstUpload(first).ID, first.Status.Source.Digest, firstUpload(second).ID, second.Status.Source.Digest)
	}
	if firstUpload(second).Generation != second.Generation || firstUpload(second).Filename != "b.csv" {
		t.Errorf("upload belongs to generation %d (%s), want %d (b.csv)", firstUpload(second).Generation, firstUpload(second).Filename, second.Generation)
	}
	if h := second.Status.History; len(h) != 1 || h[0].ID != firstUpload(first).ID {
		t.Errorf("history %+v, want the first upload", h)
	}
	if n := h.sandbox.CountSucceeded(sandbox.EndpointInitiate); n != 2 {
		t.Errorf("initiate called %d times, want twice", n)
	}
}

func TestSuspendStopsAllWorkAndSaysSo(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.put("vip.csv", phoneFile(0, 100))
	u := h.object("vip", "vip.csv")
	u.Spec.Suspend = true
	h.create(u)

	u = h.waitFor("vip", 30*time.Second, "suspended", func(u *upv1.UserPackageUpload) bool {
		c := findCondition(u, upv1.ConditionReady)
		return c != nil && c.Reason == upv1.ReasonSuspended
	})
	if !conditionIs(u, upv1.ConditionReconciling, metav1.ConditionTrue) || kstatus(t, u) == "Current" {
		t.Errorf("an object created suspended reads %s to kstatus; want Reconciling=True, never Current:\n%s", kstatus(t, u), describe(u))
	}
	h.waitIdle()
	if n := len(h.sandbox.Records()); n != 0 || u.Status.Source != nil {
		t.Fatalf("a suspended object was worked on: %d calls, source %+v", n, u.Status.Source)
	}
	h.update("vip", func(u *upv1.UserPackageUpload) { u.Spec.Suspend = false })
	h.waitReady("vip")
}

func TestARequestedReconcileIsEchoedAndReadsTheFileAgain(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.put("vip.csv", phoneFile(0, 100))
	u := h.object("vip", "vip.csv")
	u.Spec.UploadParts = ptrTo(false)
	h.create(u)
	first := h.waitReady("vip")

	// Same bytes: the request is handled, and no new upload starts.
	u = h.requestReconcile("vip", "2026-11-26T10:00:00Z")
	if firstUpload(u).ID != firstUpload(first).ID {
		t.Errorf("a reconcile request over the same bytes started upload %s", firstUpload(u).ID)
	}

	// New bytes: the request reads them and starts a new upload.
	h.put("vip.csv", phoneFile(1000, 100))
	u = h.requestReconcile("vip", "2026-11-26T11:00:00Z")
	if firstUpload(u).ID == firstUpload(first).ID || u.Status.Source.Digest == first.Status.Source.Digest {
		t.Error("new bytes did not start a new upload with a new digest")
	}
	if firstUpload(u).Filename != "vip-2.csv" {
		t.Errorf("the second upload is named %q, want vip-2.csv (WeChat Pay refuses a filename twice)", firstUpload(u).Filename)
	}
}

// TestEveryLostAnswerConverges loses the answer of each call once, after
// the sandbox processed it: the object still ends Ready, WeChat Pay holds
// the source file, and no package is expanded twice by one upload.
func TestEveryLostAnswerConverges(t *testing.T) {
	for _, e := range []sandbox.Endpoint{sandbox.EndpointInitiate, sandbox.EndpointUploadPart, sandbox.EndpointMerge, sandbox.EndpointExpand} {
		t.Run("a lost answer of "+string(e)+" converges", func(t *testing.T) {
			h := newHarness(t, harnessOptions{partSize: gitopsPartSize, noManager: true})
			must(t, h.sandbox.FailNext(e, 1, sandbox.FaultLostResponse))
			h.startManager(nil)
			data := phoneFile(0, 10_000)
			h.put("vip.csv", data)
			u := h.object("vip", "vip.csv")
			u.Spec.UserPackageID = packageA
			h.create(u)

			u = h.waitReady("vip")
			if merged, _ := h.sandbox.MergedFile(firstUpload(u).ID); !bytes.Equal(merged, data) {
				t.Error("WeChat Pay's reassembled file differs from the source")
			}
			expands := 0
			for _, r := range h.sandbox.Records() {
				if r.Endpoint == sandbox.EndpointExpand && r.Succeeded() && r.UploadID == firstUpload(u).ID {
					expands++
				}
			}
			if expands != 1 {
				t.Errorf("the package was expanded %d times with upload %s, want once", expands, firstUpload(u).ID)
			}
			if n := h.calls()[sandbox.EndpointMerge]; n != 1 {
				t.Errorf("%d merges processed, want 1", n)
			}
			unknown := map[sandbox.Endpoint]int32{
				sandbox.EndpointInitiate: firstUpload(u).UnknownOutcomes + int32(len(u.Status.History)),
				sandbox.EndpointMerge:    firstUpload(u).MergeUnknownOutcomes,
				sandbox.EndpointExpand:   firstUpload(u).ExpandUnknownOutcomes,
			}
			if e != sandbox.EndpointUploadPart && unknown[e] == 0 {
				t.Errorf("the lost answer of %s is not counted in status: %+v", e, unknown)
			}
		})
	}
}
