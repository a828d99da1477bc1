package uploads

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	lua "github.com/yuin/gopher-lua"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/syncs"
	"github.com/crowdpack/crowdpack/internal/sandbox"
)

// update rewrites the Argo CD testdata from live objects, and the argocd-cm
// patch from the Lua files:
//
//	go test ./controllers/uploads -run ArgoCD -update
var update = flag.Bool("update", false, "rewrite config/argocd testdata from live objects and argocd-cm-patch.yaml from the Lua files")

// argocdKind is the Argo CD customization of one kind, in a folder laid
// out as Argo CD's own resource_customizations/<group>/<Kind>/.
type argocdKind string

const (
	argocdUpload argocdKind = "UserPackageUpload"
	argocdSync   argocdKind = "UserPackageSync"
)

// argocdKinds are the kinds with a customization, in the order of the
// argocd-cm patch.
var argocdKinds = []argocdKind{argocdUpload, argocdSync}

func (k argocdKind) dir() string {
	return "../../config/argocd/resource_customizations/" + upv1.GroupVersion.Group + "/" + string(k)
}

// The argocd-cm keys of the customization (resource.customizations.<kind>.<group>_<Kind>).
func (k argocdKind) healthKey() string {
	return "resource.customizations.health." + upv1.GroupVersion.Group + "_" + string(k)
}

func (k argocdKind) actionsKey() string {
	return "resource.customizations.actions." + upv1.GroupVersion.Group + "_" + string(k)
}

// argocdKindOf is the customization that applies to obj, as Argo CD picks
// it by group and kind.
func argocdKindOf(t *testing.T, obj map[string]any) argocdKind {
	t.Helper()
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if group, _, _ := strings.Cut(apiVersion, "/"); group == upv1.GroupVersion.Group {
		for _, k := range argocdKinds {
			if string(k) == kind {
				return k
			}
		}
	}
	t.Fatalf("no Argo CD customization for %s %s", apiVersion, kind)
	return ""
}

const argocdPatchPath = "../../config/argocd/argocd-cm-patch.yaml"

// argocdActions are the actions discovery.lua offers, each in actions/<name>/action.lua.
var argocdActions = []string{"reconcile", "suspend", "resume"}

// TestArgoCDHealthOfLiveObjects drives real objects into each state with
// the operator, evaluates health.lua on them as Argo CD would, checks that
// kstatus reads them the same way, and (with -update) stores them as the
// testdata health_test.yaml refers to.
func TestArgoCDHealthOfLiveObjects(t *testing.T) {
	type captured struct {
		file       string
		obj        map[string]any
		wantStatus string
		// wantKstatus is what kstatus computes for the same object; "" where
		// it differs by design: kstatus calls an object without status, or
		// one suspended but Ready, Current.
		wantKstatus status.Status
	}
	var all []captured
	capture := func(h *harness, name, file, wantStatus string, wantKstatus status.Status) {
		t.Helper()
		all = append(all, captured{file: file, obj: liveObject(t, h, argocdUpload, name), wantStatus: wantStatus, wantKstatus: wantKstatus})
	}
	// derive stores an edit of a captured object, for states the operator
	// does not produce on its own (yet).
	derive := func(from map[string]any, file, wantStatus string, wantKstatus status.Status, edit func(obj map[string]any)) {
		t.Helper()
		obj := jsonRoundTrip(t, from).(map[string]any)
		edit(obj)
		all = append(all, captured{file: file, obj: obj, wantStatus: wantStatus, wantKstatus: wantKstatus})
	}
	suspendedByOperator := func(u *upv1.UserPackageUpload) bool {
		for _, typ := range []string{upv1.ConditionReconciling, upv1.ConditionReady} {
			c := findCondition(u, typ)
			if c == nil || c.Reason != upv1.ReasonSuspended || c.ObservedGeneration != u.Generation {
				return false
			}
		}
		return true
	}

	// A manager that cannot reach initiate: a fresh object, then one retrying.
	slow := newHarness(t, harnessOptions{noManager: true})
	slow.put("vip.csv", phoneFile(0, 100))
	slow.create(slow.object("vip", "vip.csv"))
	capture(slow, "vip", "new.yaml", "Progressing", "")
	must(t, slow.sandbox.FailNext(sandbox.EndpointInitiate, 1000, sandbox.FaultUnavailable))
	slow.startManager(nil)
	slow.waitFor("vip", 30*time.Second, "retrying", func(u *upv1.UserPackageUpload) bool {
		c := findCondition(u, upv1.ConditionReconciling)
		return c != nil && c.Reason == upv1.ReasonRetrying && c.ObservedGeneration == u.Generation
	})
	capture(slow, "vip", "retrying.yaml", "Progressing", status.InProgressStatus)

	h := newHarness(t, harnessOptions{})
	h.put("vip.csv", phoneFile(0, 100))
	h.create(h.object("vip", "vip.csv"))
	h.waitReady("vip")
	capture(h, "vip", "ready.yaml", "Healthy", status.CurrentStatus)
	ready := all[len(all)-1].obj
	// An edit of it whose generation is not observed yet.
	derive(ready, "ready-spec-changed.yaml", "Progressing", status.InProgressStatus, func(obj map[string]any) {
		must(t, unstructured.SetNestedField(obj, int64(2), "metadata", "generation"))
		must(t, unstructured.SetNestedField(obj, "vip-v2.csv", "spec", "source", "s3", "key"))
	})
	// As an operator that leaves out the conditions' observedGeneration
	// would write it: status.observedGeneration alone says which generation
	// Ready describes...
	derive(ready, "ready-without-condition-generations.yaml", "Healthy", status.CurrentStatus, func(obj map[string]any) {
		removeConditionGenerations(t, obj)
	})
	// ...so a newer generation is not Healthy.
	derive(ready, "ready-without-condition-generations-spec-changed.yaml", "Progressing", status.InProgressStatus, func(obj map[string]any) {
		removeConditionGenerations(t, obj)
		must(t, unstructured.SetNestedField(obj, int64(2), "metadata", "generation"))
		must(t, unstructured.SetNestedField(obj, "vip-v2.csv", "spec", "source", "s3", "key"))
	})
	// spec.suspend wins whatever the status says, even Ready for the
	// current generation (the API server bumps the generation, so only an
	// operator that has not seen the edit leaves it so).
	derive(ready, "ready-with-suspend.yaml", "Suspended", "", func(obj map[string]any) {
		must(t, unstructured.SetNestedField(obj, true, "spec", "suspend"))
	})
	// Suspended after it became Ready.
	h.update("vip", func(u *upv1.UserPackageUpload) { u.Spec.Suspend = true })
	h.waitFor("vip", 30*time.Second, "suspended", suspendedByOperator)
	capture(h, "vip", "ready-suspended.yaml", "Suspended", status.InProgressStatus)

	stalled := h.object("no-credentials", "vip.csv")
	stalled.Spec.CredentialsRef.Name = "absent"
	h.create(stalled)
	h.waitStalled("no-credentials", upv1.ReasonSecretNotFound)
	capture(h, "no-credentials", "stalled.yaml", "Degraded", status.FailedStatus)

	// Created suspended: no status.observedGeneration, as nothing was done.
	suspended := h.object("suspended", "vip.csv")
	suspended.Spec.Suspend = true
	h.create(suspended)
	h.waitFor("suspended", 30*time.Second, "suspended", suspendedByOperator)
	capture(h, "suspended", "suspended.yaml", "Suspended", status.InProgressStatus)

	for _, c := range all {
		t.Run(c.file, func(t *testing.T) {
			got := argocdHealth(t, c.obj)
			if got.Status != c.wantStatus || got.Message == "" {
				t.Errorf("health %+v, want status %s and a message", got, c.wantStatus)
			}
			if c.wantKstatus == "" {
				return
			}
			if got := kstatusOf(t, c.obj); got.Status != c.wantKstatus {
				t.Errorf("kstatus %s (%s), want %s", got.Status, got.Message, c.wantKstatus)
			}
		})
		if *update {
			obj := normalizeCaptured(c.obj, h, slow)
			out, err := yaml.Marshal(obj)
			must(t, err)
			must(t, os.WriteFile(filepath.Join(argocdUpload.dir(), "testdata", c.file), out, 0o644))
		}
	}
}

// TestArgoCDHealthOfLiveSyncs is TestArgoCDHealthOfLiveObjects for
// UserPackageSyncs: real syncs driven into each state by the operator,
// health.lua and kstatus evaluated on them, and (with -update) stored as
// the sync's testdata.
func TestArgoCDHealthOfLiveSyncs(t *testing.T) {
	type captured struct {
		file        string
		obj         map[string]any
		wantStatus  string
		wantKstatus status.Status // "" where kstatus differs by design
	}
	var all []captured
	capture := func(h *harness, name, file, wantStatus string, wantKstatus status.Status) {
		t.Helper()
		all = append(all, captured{file: file, obj: liveObject(t, h, argocdSync, name), wantStatus: wantStatus, wantKstatus: wantKstatus})
	}
	derive := func(from map[string]any, file, wantStatus string, wantKstatus status.Status, edit func(obj map[string]any)) {
		t.Helper()
		obj := jsonRoundTrip(t, from).(map[string]any)
		edit(obj)
		all = append(all, captured{file: file, obj: obj, wantStatus: wantStatus, wantKstatus: wantKstatus})
	}
	// currently: condition typ has reason and status for the current generation.
	currently := func(typ, reason string, want metav1.ConditionStatus) func(*upv1.UserPackageSync) bool {
		return func(s *upv1.UserPackageSync) bool {
			for _, c := range s.Status.Conditions {
				if c.Type == typ {
					return c.Status == want && c.Reason == reason && c.ObservedGeneration == s.Generation &&
						s.Status.ObservedGeneration == s.Generation
				}
			}
			return false
		}
	}
	setSuspend := func(h *harness, name string, suspend bool) {
		t.Helper()
		patch := fmt.Sprintf(`{"spec":{"suspend":%t}}`, suspend)
		must(t, kube.Client.Patch(h.ctx, &upv1.UserPackageSync{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name}},
			client.RawPatch(types.MergePatchType, []byte(patch))))
	}
	first, _ := rawNumbersFile(0, 1_000, "%s")
	truncated, _ := rawNumbersFile(0, 100, "%s")

	// A manager whose children cannot reach initiate: a fresh sync, then
	// one whose first revision is being synced by a child that retries.
	slow := newHarness(t, harnessOptions{noManager: true, syncs: true})
	slow.put("exports/vip/2026-12-01.csv", first)
	must(t, kube.Client.Create(slow.ctx, slow.syncOf("vip", "exports/vip/")))
	capture(slow, "vip", "new.yaml", "Progressing", "")
	must(t, slow.sandbox.FailNext(sandbox.EndpointInitiate, 1000, sandbox.FaultUnavailable))
	slow.startManager(nil)
	slow.waitSync("vip", "syncing its first revision", func(s *upv1.UserPackageSync) bool {
		return len(s.Status.History) > 0 && s.Status.History[0].Result == upv1.SyncResultInFlight &&
			currently(upv1.ConditionReconciling, upv1.ReasonProgressing, metav1.ConditionTrue)(s)
	})
	capture(slow, "vip", "syncing.yaml", "Progressing", status.InProgressStatus)

	h := newHarness(t, harnessOptions{syncs: true})
	h.put("exports/vip/2026-12-01.csv", first)
	must(t, kube.Client.Create(h.ctx, h.syncOf("vip", "exports/vip/")))
	h.waitRun("vip", "exports/vip/2026-12-01.csv", upv1.SyncResultSynced)
	h.waitSync("vip", "Ready", currently(upv1.ConditionReady, upv1.ReasonSucceeded, metav1.ConditionTrue))
	capture(h, "vip", "ready.yaml", "Healthy", status.CurrentStatus)
	ready := all[len(all)-1].obj
	derive(ready, "ready-spec-changed.yaml", "Progressing", status.InProgressStatus, func(obj map[string]any) {
		must(t, unstructured.SetNestedField(obj, int64(2), "metadata", "generation"))
		must(t, unstructured.SetNestedField(obj, "exports/vip-v2/", "spec", "source", "s3", "prefix"))
	})
	derive(ready, "ready-without-condition-generations.yaml", "Healthy", status.CurrentStatus, func(obj map[string]any) {
		removeConditionGenerations(t, obj)
	})
	derive(ready, "ready-without-condition-generations-spec-changed.yaml", "Progressing", status.InProgressStatus, func(obj map[string]any) {
		removeConditionGenerations(t, obj)
		must(t, unstructured.SetNestedField(obj, int64(2), "metadata", "generation"))
		must(t, unstructured.SetNestedField(obj, "exports/vip-v2/", "spec", "source", "s3", "prefix"))
	})
	derive(ready, "ready-with-suspend.yaml", "Suspended", "", func(obj map[string]any) {
		must(t, unstructured.SetNestedField(obj, true, "spec", "suspend"))
	})

	// Suspended after it became Ready, then resumed.
	setSuspend(h, "vip", true)
	h.waitSync("vip", "suspended", currently(upv1.ConditionReady, upv1.ReasonSuspended, metav1.ConditionFalse))
	capture(h, "vip", "ready-suspended.yaml", "Suspended", status.InProgressStatus)
	setSuspend(h, "vip", false)
	h.waitSync("vip", "Ready again", currently(upv1.ConditionReady, upv1.ReasonSucceeded, metav1.ConditionTrue))

	// A revision with a tenth of the members is held back until approved.
	h.put("exports/vip/2026-12-02.csv", truncated)
	h.requestSync("vip")
	h.waitSync("vip", "Stalled SuspiciousShrink", currently(upv1.ConditionStalled, syncs.ReasonSuspiciousShrink, metav1.ConditionTrue))
	capture(h, "vip", "held-back.yaml", "Degraded", status.FailedStatus)

	// Created suspended.
	paused := h.syncOf("paused", "exports/vip/")
	paused.Spec.Suspend = true
	must(t, kube.Client.Create(h.ctx, paused))
	h.waitSync("paused", "suspended", currently(upv1.ConditionReady, upv1.ReasonSuspended, metav1.ConditionFalse))
	capture(h, "paused", "suspended.yaml", "Suspended", status.InProgressStatus)

	for _, c := range all {
		t.Run(c.file, func(t *testing.T) {
			got := argocdHealth(t, c.obj)
			if got.Status != c.wantStatus || got.Message == "" {
				t.Errorf("health %+v, want status %s and a message", got, c.wantStatus)
			}
			if c.wantKstatus == "" {
				return
			}
			if got := kstatusOf(t, c.obj); got.Status != c.wantKstatus {
				t.Errorf("kstatus %s (%s), want %s", got.Status, got.Message, c.wantKstatus)
			}
		})
		if *update {
			obj := normalizeCaptured(c.obj, h, slow)
			out, err := yaml.Marshal(obj)
			must(t, err)
			must(t, os.WriteFile(filepath.Join(argocdSync.dir(), "testdata", c.file), out, 0o644))
		}
	}
}

// TestArgoCDCustomizationsAreAlike: the kinds' Lua files differ only in
// their comments, so a fix to one is made to all.
func TestArgoCDCustomizationsAreAlike(t *testing.T) {
	files := []string{"health.lua", filepath.Join("actions", "discovery.lua")}
	for _, name := range argocdActions {
		files = append(files, filepath.Join("actions", name, "action.lua"))
	}
	code := func(path string) string {
		var b strings.Builder
		for line := range strings.Lines(readText(t, path)) {
			if trimmed := strings.TrimSpace(line); trimmed != "" && !strings.HasPrefix(trimmed, "--") {
				b.WriteString(line)
			}
		}
		return b.String()
	}
	for _, f := range files {
		want := code(filepath.Join(argocdKinds[0].dir(), f))
		for _, k := range argocdKinds[1:] {
			if got := code(filepath.Join(k.dir(), f)); got != want {
				t.Errorf("%s of %s differs from %s's beyond comments:\n%s", f, k, argocdKinds[0], cmp.Diff(want, got))
			}
		}
	}
}

// kstatusOf computes what kstatus-based tools (Flux, kpt, cli-utils) see.
func kstatusOf(t *testing.T, obj map[string]any) *status.Result {
	t.Helper()
	raw, err := json.Marshal(obj)
	must(t, err)
	u := &unstructured.Unstructured{}
	must(t, u.UnmarshalJSON(raw)) // integers as int64, as kstatus expects
	res, err := status.Compute(u)
	must(t, err)
	return res
}

// removeConditionGenerations deletes observedGeneration from every condition.
func removeConditionGenerations(t *testing.T, obj map[string]any) {
	t.Helper()
	conditions, found, err := unstructured.NestedSlice(obj, "status", "conditions")
	must(t, err)
	if !found {
		t.Fatal("no status.conditions to edit")
	}
	for _, c := range conditions {
		delete(c.(map[string]any), "observedGeneration")
	}
	must(t, unstructured.SetNestedSlice(obj, conditions, "status", "conditions"))
}

// TestArgoCDHealthTestCases runs each kind's health_test.yaml, Argo CD's
// own test format, against the committed testdata.
func TestArgoCDHealthTestCases(t *testing.T) {
	for _, k := range argocdKinds {
		t.Run(string(k), func(t *testing.T) { testArgoCDHealthTestCases(t, k) })
	}
}

func testArgoCDHealthTestCases(t *testing.T, k argocdKind) {
	customizationDir := k.dir()
	var suite struct {
		Tests []struct {
			HealthStatus argocdHealthStatus `json:"healthStatus"`
			InputPath    string             `json:"inputPath"`
		} `json:"tests"`
	}
	readYAML(t, filepath.Join(customizationDir, "health_test.yaml"), &suite)
	if len(suite.Tests) == 0 {
		t.Fatal("health_test.yaml has no tests")
	}
	for _, tc := range suite.Tests {
		t.Run(tc.InputPath, func(t *testing.T) {
			var obj map[string]any
			readYAML(t, filepath.Join(customizationDir, tc.InputPath), &obj)
			if got := argocdKindOf(t, obj); got != k {
				t.Fatalf("%s is a %s, in the folder of %s", tc.InputPath, got, k)
			}
			if got := argocdHealth(t, obj); got != tc.HealthStatus {
				t.Errorf("health %+v, want %+v (after changing the operator's messages, run with -update and fix health_test.yaml)", got, tc.HealthStatus)
			}
		})
	}
}

// TestArgoCDActions runs each kind's actions/action_test.yaml (Argo CD's
// format) and checks what each action changes.
func TestArgoCDActions(t *testing.T) {
	for _, k := range argocdKinds {
		t.Run(string(k), func(t *testing.T) { testArgoCDActions(t, k) })
	}
}

func testArgoCDActions(t *testing.T, k argocdKind) {
	dir := filepath.Join(k.dir(), "actions")
	var suite struct {
		DiscoveryTests []struct {
			InputPath string `json:"inputPath"`
			Result    []struct {
				Name     string `json:"name"`
				Disabled bool   `json:"disabled"`
			} `json:"result"`
		} `json:"discoveryTests"`
		ActionTests []struct {
			Action             string `json:"action"`
			InputPath          string `json:"inputPath"`
			ExpectedOutputPath string `json:"expectedOutputPath"`
		} `json:"actionTests"`
	}
	readYAML(t, filepath.Join(dir, "action_test.yaml"), &suite)
	discovery := readText(t, filepath.Join(dir, "discovery.lua"))
	for _, tc := range suite.DiscoveryTests {
		t.Run("discovery of "+tc.InputPath, func(t *testing.T) {
			var obj map[string]any
			readYAML(t, filepath.Join(dir, tc.InputPath), &obj)
			if got := argocdKindOf(t, obj); got != k {
				t.Fatalf("%s is a %s, in the folder of %s", tc.InputPath, got, k)
			}
			got := map[string]bool{}
			for name, a := range runLua(t, discovery, obj).(map[string]any) {
				got[name] = a.(map[string]any)["disabled"] == true
			}
			want := map[string]bool{}
			for _, r := range tc.Result {
				want[r.Name] = r.Disabled
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("actions (name: disabled) -want +got:\n%s", d)
			}
		})
	}
	for _, tc := range suite.ActionTests {
		t.Run(tc.Action+" of "+tc.InputPath, func(t *testing.T) {
			var in, want map[string]any
			readYAML(t, filepath.Join(dir, tc.InputPath), &in)
			readYAML(t, filepath.Join(dir, tc.ExpectedOutputPath), &want)
			got := runLua(t, readText(t, filepath.Join(dir, tc.Action, "action.lua")), in).(map[string]any)
			if tc.Action == "reconcile" {
				checkRequestedAt(t, got)
			}
			if d := cmp.Diff(jsonRoundTrip(t, want), jsonRoundTrip(t, got)); d != "" {
				t.Errorf("%s -want +got:\n%s", tc.Action, d)
			}
		})
	}

	// Whatever the testdata, on a minimal object:
	bare := func() map[string]any {
		return map[string]any{"apiVersion": upv1.GroupVersion.String(), "kind": string(k),
			"metadata": map[string]any{"name": "vip"}, "spec": map[string]any{}}
	}
	t.Run("reconcile sets the Flux annotation", func(t *testing.T) {
		got := runLua(t, readText(t, filepath.Join(dir, "reconcile", "action.lua")), bare()).(map[string]any)
		checkRequestedAt(t, got)
	})
	for _, c := range []struct {
		action string
		from   bool
		want   bool
	}{{"suspend", false, true}, {"resume", true, false}} {
		t.Run(c.action+" sets spec.suspend to "+fmt.Sprint(c.want), func(t *testing.T) {
			obj := bare()
			obj["spec"].(map[string]any)["suspend"] = c.from
			got := runLua(t, readText(t, filepath.Join(dir, c.action, "action.lua")), obj).(map[string]any)
			if s := got["spec"].(map[string]any)["suspend"]; s != c.want {
				t.Errorf("spec.suspend = %v, want %v", s, c.want)
			}
		})
	}
}

// checkRequestedAt checks that the reconcile action set a current UTC
// timestamp, then replaces it with the one the testdata uses.
func checkRequestedAt(t *testing.T, obj map[string]any) {
	t.Helper()
	annotations, _ := obj["metadata"].(map[string]any)["annotations"].(map[string]any)
	value, _ := annotations[upv1.ReconcileRequestAnnotation].(string)
	at, err := time.Parse("2006-01-02T15:04:05Z", value)
	if err != nil || time.Since(at).Abs() > time.Minute {
		t.Fatalf("annotation %s = %q, want the current UTC time (%v)", upv1.ReconcileRequestAnnotation, value, err)
	}
	annotations[upv1.ReconcileRequestAnnotation] = requestedAtPlaceholder
}

// requestedAtPlaceholder stands for the reconcile action's time in testdata.
const requestedAtPlaceholder = "2026-01-01T00:00:00Z"

// TestArgoCDConfigMapPatchInlinesTheLuaFiles keeps argocd-cm-patch.yaml
// generated from the Lua files (with -update, it rewrites it).
func TestArgoCDConfigMapPatchInlinesTheLuaFiles(t *testing.T) {
	want := argocdConfigMapPatch(t)
	if *update {
		must(t, os.WriteFile(argocdPatchPath, []byte(want), 0o644))
	}
	got := readText(t, argocdPatchPath)
	if got != want {
		t.Fatalf("%s is not generated from the Lua files (run go test ./controllers/uploads -run ArgoCD -update):\n%s",
			argocdPatchPath, cmp.Diff(want, got))
	}

	// And it means what it says: the same Lua, once parsed as YAML, for
	// each kind and nothing else.
	var cm corev1.ConfigMap
	readYAML(t, argocdPatchPath, &cm)
	var keys []string
	for _, k := range argocdKinds {
		keys = append(keys, k.healthKey(), k.actionsKey())
		t.Run(string(k), func(t *testing.T) { checkArgoCDConfigMapPatch(t, &cm, k) })
	}
	if got := slices.Sorted(maps.Keys(cm.Data)); !slices.Equal(got, slices.Sorted(slices.Values(keys))) {
		t.Errorf("argocd-cm keys %v, want %v", got, keys)
	}
}

func checkArgoCDConfigMapPatch(t *testing.T, cm *corev1.ConfigMap, k argocdKind) {
	customizationDir := k.dir()
	if got, want := cm.Data[k.healthKey()], readText(t, filepath.Join(customizationDir, "health.lua")); got != want {
		t.Errorf("%s differs from health.lua:\n%s", k.healthKey(), cmp.Diff(want, got))
	}
	var actions struct {
		Discovery   string `json:"discovery.lua"`
		Definitions []struct {
			Name   string `json:"name"`
			Action string `json:"action.lua"`
		} `json:"definitions"`
	}
	must(t, yaml.UnmarshalStrict([]byte(cm.Data[k.actionsKey()]), &actions))
	if want := readText(t, filepath.Join(customizationDir, "actions", "discovery.lua")); actions.Discovery != want {
		t.Errorf("discovery.lua differs:\n%s", cmp.Diff(want, actions.Discovery))
	}
	var names []string
	for _, d := range actions.Definitions {
		names = append(names, d.Name)
		if want := readText(t, filepath.Join(customizationDir, "actions", d.Name, "action.lua")); d.Action != want {
			t.Errorf("action %s differs:\n%s", d.Name, cmp.Diff(want, d.Action))
		}
	}
	if !slices.Equal(names, argocdActions) {
		t.Errorf("actions %v, want %v", names, argocdActions)
	}
}

// argocdConfigMapPatch renders the argocd-cm patch from the Lua files.
func argocdConfigMapPatch(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(`# Generated from config/argocd/resource_customizations/ by
#   go test ./controllers/uploads -run ArgoCD -update
# Do not edit: edit the .lua files and regenerate.
#
# Teaches Argo CD the health of UserPackageUploads and UserPackageSyncs and
# adds their reconcile, suspend and resume actions. Apply it to Argo CD's ConfigMap:
#   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file config/argocd/argocd-cm-patch.yaml
# or list it under patches: in the kustomization that installs Argo CD.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
`)
	for _, k := range argocdKinds {
		customizationDir := k.dir()
		b.WriteString("  " + k.healthKey() + ": |\n")
		b.WriteString(indent(readText(t, filepath.Join(customizationDir, "health.lua")), 4))
		b.WriteString("  " + k.actionsKey() + ": |\n")
		b.WriteString("    discovery.lua: |\n")
		b.WriteString(indent(readText(t, filepath.Join(customizationDir, "actions", "discovery.lua")), 6))
		b.WriteString("    definitions:\n")
		for _, name := range argocdActions {
			b.WriteString("    - name: " + name + "\n")
			b.WriteString("      action.lua: |\n")
			b.WriteString(indent(readText(t, filepath.Join(customizationDir, "actions", name, "action.lua")), 8))
		}
	}
	return b.String()
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	var b strings.Builder
	for line := range strings.Lines(s) {
		if strings.TrimSpace(line) == "" {
			b.WriteString("\n")
			continue
		}
		b.WriteString(pad + line)
	}
	return b.String()
}

// liveObject reads the object as Argo CD sees it (unstructured, without
// managedFields).
func liveObject(t *testing.T, h *harness, kind argocdKind, name string) map[string]any {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(upv1.GroupVersion.WithKind(string(kind)))
	must(t, kube.Client.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: name}, u))
	unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
	return u.Object
}

var (
	rfc3339   = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$`)
	requestID = regexp.MustCompile(`request id [0-9A-Za-z-]+`)
	// inText is a time inside a message ("synced 2026-12-03T13:20:00Z").
	inText = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
)

// normalizeCaptured makes a captured object the same on every run: no
// uid, resourceVersion or creationTimestamp, fixed times (also in
// messages), namespace default, and the harnesses' random bucket,
// endpoint, request ids and what derives from them replaced (a sync's
// children are named after its uid: <sync>-00000001, -00000002, ...).
func normalizeCaptured(obj map[string]any, hs ...*harness) map[string]any {
	obj = jsonRoundTrip(nil, obj).(map[string]any)
	meta := obj["metadata"].(map[string]any)
	for _, k := range []string{"uid", "resourceVersion", "creationTimestamp", "managedFields"} {
		delete(meta, k)
	}
	meta["namespace"] = "default"
	replacer := []string{storage.Endpoint, "minio.example.com:9000"}
	for _, h := range hs {
		replacer = append(replacer, h.bucket, "crowd-packages", h.ns+"/", "default/", "-n "+h.ns+" ", "-n default ")
	}
	// The sandbox's upload and resource ids embed the time.
	status, _ := obj["status"].(map[string]any)
	// status.uploads[i] gets upload-id-000<i+1> and RES000…<i+1>.
	uploads, _ := status["uploads"].([]any)
	for i, u := range uploads {
		up, _ := u.(map[string]any)
		for k, fixed := range map[string]string{"id": fmt.Sprintf("upload-id-%04d", i+1), "resourceID": fmt.Sprintf("RES%032d", i+1)} {
			if v, ok := up[k].(string); ok && v != "" {
				replacer = append(replacer, v, fixed)
			}
		}
	}
	// The source fingerprint hashes spec.source, random bucket included.
	if src, ok := status["source"].(map[string]any); ok {
		if v, ok := src["fingerprint"].(string); ok && v != "" {
			replacer = append(replacer, v, "0123456789abcdef")
		}
	}
	// A sync's children, by age (history is newest first): the oldest
	// becomes <sync>-00000001.
	var children []string
	history, _ := status["history"].([]any)
	for i := len(history) - 1; i >= 0; i-- {
		if c, _ := history[i].(map[string]any)["child"].(string); c != "" && !slices.Contains(children, c) {
			children = append(children, c)
		}
	}
	if last, ok := status["lastSyncedRevision"].(map[string]any); ok {
		if c, _ := last["child"].(string); c != "" && !slices.Contains(children, c) {
			children = append(children, c)
		}
	}
	for i, c := range children {
		if j := strings.LastIndex(c, "-"); j > 0 {
			replacer = append(replacer, c, fmt.Sprintf("%s-%08d", c[:j], i+1))
		}
	}
	r := strings.NewReplacer(replacer...)
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				v[k] = walk(e)
			}
		case []any:
			for i, e := range v {
				v[i] = walk(e)
			}
		case string:
			if rfc3339.MatchString(v) {
				return requestedAtPlaceholder
			}
			return inText.ReplaceAllString(requestID.ReplaceAllString(r.Replace(v), "request id 0123456789abcdef"), requestedAtPlaceholder)
		}
		return v
	}
	return walk(obj).(map[string]any)
}

// argocdHealthStatus is what a health script returns.
type argocdHealthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func argocdHealth(t *testing.T, obj map[string]any) argocdHealthStatus {
	t.Helper()
	out, ok := runLua(t, readText(t, filepath.Join(argocdKindOf(t, obj).dir(), "health.lua")), obj).(map[string]any)
	if !ok {
		t.Fatal("health.lua did not return a table")
	}
	s, _ := out["status"].(string)
	m, _ := out["message"].(string)
	return argocdHealthStatus{Status: s, Message: m}
}

// runLua runs script as Argo CD does: the object as a table in the global
// obj, in a VM with the base, table and string libraries (os only through
// require), and returns what the script returned, as Go values.
func runLua(t *testing.T, script string, obj map[string]any) any {
	t.Helper()
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	L.PreloadModule(lua.OsLibName, lua.OpenOs)
	L.SetGlobal("obj", toLua(L, jsonRoundTrip(t, obj)))
	if err := L.DoString(script); err != nil {
		t.Fatalf("lua: %v", err)
	}
	return fromLua(L.Get(-1))
}

func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case map[string]any:
		tbl := L.NewTable()
		for k, e := range v {
			tbl.RawSetString(k, toLua(L, e))
		}
		return tbl
	case []any:
		tbl := L.NewTable()
		for _, e := range v {
			tbl.Append(toLua(L, e))
		}
		return tbl
	default:
		panic(fmt.Sprintf("toLua: %T", v))
	}
}

// fromLua converts back as Argo CD does: a table with array items is a
// list, any other a map; integral numbers are integers.
func fromLua(v lua.LValue) any {
	switch v := v.(type) {
	case *lua.LNilType:
		return nil
	case lua.LBool:
		return bool(v)
	case lua.LString:
		return string(v)
	case lua.LNumber:
		if f := float64(v); f == math.Trunc(f) {
			return int64(f)
		}
		return float64(v)
	case *lua.LTable:
		if v.MaxN() > 0 {
			list := make([]any, 0, v.MaxN())
			for i := 1; i <= v.MaxN(); i++ {
				list = append(list, fromLua(v.RawGetInt(i)))
			}
			return list
		}
		m := map[string]any{}
		v.ForEach(func(k, e lua.LValue) { m[k.String()] = fromLua(e) })
		return m
	default:
		return v.String()
	}
}

// jsonRoundTrip turns any JSON-shaped value into map/slice/float64 form.
func jsonRoundTrip(t *testing.T, v any) any {
	raw, err := json.Marshal(v)
	if err == nil {
		var out any
		d := json.NewDecoder(bytes.NewReader(raw))
		if err = d.Decode(&out); err == nil {
			return out
		}
	}
	if t != nil {
		t.Fatal(err)
	}
	panic(err)
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return string(b)
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	must(t, yaml.Unmarshal([]byte(readText(t, path)), into))
}
