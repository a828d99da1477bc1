package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

func TestStatusAndCode(t *testing.T) {
	cases := []struct {
		name         string
		err          error
		status, code string
	}{
		{"a success is a 200 with no code", nil, "200", ""},
		{"an API error gives its status and code", &wechatpay.APIError{StatusCode: 429, Code: wechatpay.CodeRateLimitExceeded}, "429", "RATELIMIT_EXCEEDED"},
		{"a wrapped API error is found", fmt.Errorf("initiate: %w", &wechatpay.APIError{StatusCode: 503}), "503", ""},
		{"an unverifiable answer is marked as such", &wechatpay.VerificationError{StatusCode: 200, Reason: "bad signature"}, "200", CodeUnverified},
		{"no answer is an error", &wechatpay.TransportError{Err: errors.New("connection refused")}, StatusError, ""},
		{"a cancelled call is an error", context.Canceled, StatusError, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, code := statusAndCode(tc.err)
			if status != tc.status || code != tc.code {
				t.Errorf("statusAndCode = %q, %q; want %q, %q", status, code, tc.status, tc.code)
			}
		})
	}
}

func TestPhase(t *testing.T) {
	cond := func(typ string, status metav1.ConditionStatus, gen int64) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, ObservedGeneration: gen, Reason: "R"}
	}
	obj := func(suspend bool, up *upv1.UploadStatus, cs ...metav1.Condition) *upv1.UserPackageUpload {
		u := &upv1.UserPackageUpload{}
		u.Generation = 2
		u.Spec.Suspend = suspend
		u.Status.Conditions = cs
		if up != nil {
			u.Status.Uploads = []upv1.UploadStatus{*up}
		}
		return u
	}
	T, F, U := metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown
	cases := []struct {
		name string
		u    *upv1.UserPackageUpload
		want string
	}{
		{"an object without conditions is pending", obj(false, nil), PhasePending},
		{"a new generation being read is reading", obj(false, nil, cond(upv1.ConditionReady, U, 2)), PhaseReading},
		{"a digested file not yet initiated is reading", obj(false, nil, cond(upv1.ConditionReady, F, 2), cond(upv1.ConditionSourceVerified, T, 2)), PhaseReading},
		{"an initiated upload with no part sent is initiated", obj(false, &upv1.UploadStatus{}, cond(upv1.ConditionReady, U, 2), cond(upv1.ConditionInitiated, T, 2)), PhaseInitiated},
		{"an upload with parts sent is uploading", obj(false, &upv1.UploadStatus{PartsDone: 1}, cond(upv1.ConditionReady, U, 2), cond(upv1.ConditionInitiated, T, 2)), PhaseUploading},
		{"a file in several uploads with parts sent is uploading before every upload is initiated", several(obj(false, &upv1.UploadStatus{PartsDone: 1},
			cond(upv1.ConditionReady, U, 2), cond(upv1.ConditionInitiated, F, 2))), PhaseUploading},
		{"a merged upload waiting to expand is merged", obj(false, nil, cond(upv1.ConditionReady, F, 2), cond(upv1.ConditionMerged, T, 2)), PhaseMerged},
		{"an expanded upload not yet summarised is expanded", obj(false, nil, cond(upv1.ConditionReady, U, 2), cond(upv1.ConditionExpanded, T, 2)), PhaseExpanded},
		{"Ready=True for the generation is ready", obj(false, nil, cond(upv1.ConditionReady, T, 2)), PhaseReady},
		{"Ready=True for an older generation is not ready", obj(false, nil, cond(upv1.ConditionReady, T, 1), cond(upv1.ConditionMerged, T, 1)), PhaseReading},
		{"Stalled=True is stalled", obj(false, nil, cond(upv1.ConditionReady, F, 2), cond(upv1.ConditionStalled, T, 2)), PhaseStalled},
		{"a suspended object that is not ready is suspended", obj(true, nil, cond(upv1.ConditionReady, F, 2)), PhaseSuspended},
		{"a suspended object that is ready stays ready", obj(true, nil, cond(upv1.ConditionReady, T, 2)), PhaseReady},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Phase(tc.u); got != tc.want {
				t.Errorf("Phase = %s, want %s", got, tc.want)
			}
		})
	}
}

type stringSource string

func (s stringSource) Open(context.Context) (io.ReadCloser, source.Version, error) {
	return io.NopCloser(strings.NewReader(string(s))), source.Version{Size: int64(len(s))}, nil
}

func (s stringSource) OpenRange(_ context.Context, _ source.Version, off, n int64) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(string(s)[off : off+n])), nil
}

func TestInstrumentSourceCountsEveryByteRead(t *testing.T) {
	before := value(t, SourceBytesRead)
	src := InstrumentSource(stringSource("0123456789"))
	if _, err := source.Digest(context.Background(), src, nil); err != nil {
		t.Fatal(err)
	}
	r, err := src.OpenRange(context.Background(), source.Version{Size: 10}, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); err != nil {
		t.Fatal(err)
	}
	if got := value(t, SourceBytesRead) - before; got != 15 {
		t.Errorf("bytes read grew by %v, want 15", got)
	}
}

func TestTheUploadsGaugeCountsObjectsByPhase(t *testing.T) {
	ready := &upv1.UserPackageUpload{}
	ready.Namespace, ready.Name = "ns", "a"
	ready.Status.Conditions = []metav1.Condition{{Type: upv1.ConditionReady, Status: metav1.ConditionTrue}}
	ObserveUpload(ready)
	ObserveUpload(ready) // once per object, however often reconciled
	want := map[string]float64{}
	for _, p := range Phases {
		want[p] = 0
	}
	want[PhaseReady] = 1
	if got := phases(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("uploads %v, want %v", got, want)
	}
	ForgetUpload("ns", "a")
	want[PhaseReady] = 0
	if got := phases(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the object was forgotten: uploads %v, want %v", got, want)
	}
}

// collect returns what c exports now.
func collect(t *testing.T, c prometheus.Collector) []*dto.Metric {
	t.Helper()
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	var out []*dto.Metric
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		out = append(out, &d)
	}
	return out
}

// value is the value of a collector with one counter.
func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ms := collect(t, c)
	if len(ms) != 1 {
		t.Fatalf("%d metrics, want 1", len(ms))
	}
	return ms[0].GetCounter().GetValue()
}

// phases is the uploads gauge by phase.
func phases(t *testing.T) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range collect(t, Uploads) {
		out[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
	}
	return out
}

// several gives u a second upload, not initiated yet.
func several(u *upv1.UserPackageUpload) *upv1.UserPackageUpload {
	u.Status.Uploads = append(u.Status.Uploads, upv1.UploadStatus{Index: 2})
	return u
}
