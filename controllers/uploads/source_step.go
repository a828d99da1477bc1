package uploads

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/classify"
	"github.com/crowdpack/crowdpack/internal/linecheck"
	"github.com/crowdpack/crowdpack/internal/metrics"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/uploadplan"
)

// reconcileSource reads the file when what is read changes (spec.source,
// spec.file.dataType) and when a reconcile is requested, streaming it
// through SHA-256 and the line checks; other edits judge the recorded
// checks again. It sets SourceVerified; it stalls on a missing or forbidden
// object and, with spec.validation Strict, on invalid lines.
func reconcileSource(ctx context.Context, s *scope) error {
	u := s.obj
	if !needsRead(u) {
		return checkContent(u)
	}
	// The slot first: an object waiting for its turn costs the API server nothing.
	if _, err := s.readSlot(); err != nil {
		return err
	}
	src, err := s.storage(ctx)
	if err != nil {
		return failSource(u, err)
	}
	check, err := linecheck.New(linecheck.DataType(u.Spec.File.DataType))
	if err != nil {
		return classify.Stall(upv1.ReasonInvalidSpec, "spec.file.dataType: %v", err)
	}
	start := time.Now()
	result, err := s.digest(ctx, src, check)
	if err != nil {
		return failSource(u, err)
	}
	metrics.ObserveDigest(start)
	u.Status.Source = sourceStatus(result, u.Generation)
	u.Status.Source.Fingerprint = sourceFingerprint(u)
	u.Status.Content = contentStatus(result.Report)
	u.Status.LastHandledReconcileAt = requestedAt(u)
	s.setChunks(result.Chunks)
	setCondition(u, upv1.ConditionSourceVerified, metav1.ConditionTrue, upv1.ReasonDigested, sourceMessage(u))
	if tooManyLines(u) {
		s.event(corev1.EventTypeWarning, upv1.ReasonTooManyLines, tooManyLinesMessage(u))
	}
	return checkContent(u)
}

// digest reads the file and cuts what is uploaded into chunks: the file,
// or with spec.file.excludeMembersOf its members the base lacks (which also
// sets status.delta).
func (s *scope) digest(ctx context.Context, src source.Source, check *linecheck.Checker) (source.Result, error) {
	if excludes(s.obj) {
		return s.digestDelta(ctx, src)
	}
	s.obj.Status.Delta = nil
	result, err := source.DigestChunks(ctx, src, check, splitOptions(s.obj))
	if err != nil {
		return source.Result{}, classify.Source(err)
	}
	return result, nil
}

// needsRead reports whether the file must be read (again): nothing was
// read yet (or its chunks are not recorded), a reconcile was requested, or
// what is read changed.
func needsRead(u *upv1.UserPackageUpload) bool {
	s := u.Status.Source
	if s == nil || reconcileRequested(u) || !hasChunks(u) {
		return true
	}
	if s.Fingerprint == "" && s.Generation == u.Generation {
		s.Fingerprint = sourceFingerprint(u) // read before fingerprints existed, for this very spec
	}
	return s.Fingerprint != sourceFingerprint(u)
}

// sourceFingerprint identifies what reading the file depends on: where it
// is, how it is reached, the data type its lines are checked against, how
// it is cut and hashed, and the base whose members it leaves out. The last
// four count only when they differ from their defaults, so that objects
// read before they existed are not read again.
func sourceFingerprint(u *upv1.UserPackageUpload) string {
	f := u.Spec.File
	cut := struct {
		MaxLines      *int64       `json:"maxLinesPerUpload,omitempty"`
		SkipHeaderRow bool         `json:"skipHeaderRow,omitempty"`
		Hashing       upv1.Hashing `json:"hashing,omitempty"`
	}{SkipHeaderRow: f.SkipHeaderRow}
	if m := maxLines(u); m != recommendedMaxLines {
		cut.MaxLines = &m
	}
	if f.Hashing != "" && f.Hashing != upv1.HashingNone {
		cut.Hashing = f.Hashing
	}
	var cutField any // nil for the default cut, which keeps the fingerprint as it was
	if cut.MaxLines != nil || cut.SkipHeaderRow || cut.Hashing != "" {
		cutField = cut
	}
	data, _ := json.Marshal(struct {
		Source   upv1.Source        `json:"source"`
		DataType upv1.DataType      `json:"dataType"`
		Cut      any                `json:"cut,omitempty"`
		Exclude  *upv1.PinnedSource `json:"excludeMembersOf,omitempty"`
	}{u.Spec.Source, u.Spec.File.DataType, cutField, u.Spec.File.ExcludeMembersOf})
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

func sourceStatus(r source.Result, generation int64) *upv1.SourceStatus {
	s := &upv1.SourceStatus{
		Size:       r.Version.Size,
		Digest:     digestPrefix + r.Digest,
		ETag:       r.Version.ETag,
		VersionID:  r.Version.VersionID,
		Generation: generation,
	}
	if !r.Version.LastModified.IsZero() {
		s.LastModified = &metav1.Time{Time: r.Version.LastModified}
	}
	return s
}

// failSource records why the file could not be read and passes the error on.
func failSource(u *upv1.UserPackageUpload, err error) error {
	return failCondition(u, upv1.ConditionSourceVerified, err)
}

// checkContent stops a Strict upload whose file has invalid lines.
func checkContent(u *upv1.UserPackageUpload) error {
	c := u.Status.Content
	if u.Spec.Validation != upv1.ValidationStrict || c == nil || c.InvalidLines == 0 {
		return nil
	}
	return classify.Stall(upv1.ReasonInvalidLines,
		"%d of %d lines are not valid %s values (first at line %s); fix the file, or set spec.validation to Report to upload it anyway (WeChat Pay drops such lines)",
		c.InvalidLines, c.Lines, u.Spec.File.DataType, joinNumbers(c.InvalidLineNumbers))
}

func contentStatus(r linecheck.Report) *upv1.ContentStatus { return uploadplan.Content(r) }
