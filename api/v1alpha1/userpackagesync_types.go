package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// UserPackageSyncSpec says which export to follow and which crowd package
// to keep in step with it.
// +kubebuilder:validation:XValidation:rule="has(self.brandRef) != has(self.credentialsRef)",message="exactly one of brandRef (a platform-owned WeChatPayBrand) or credentialsRef (a Secret of this namespace) must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.file.excludeMembersOf)",message="a sync sets excludeMembersOf on its children itself (spec.mode: Delta); leave it out of spec.file",fieldPath=".file.excludeMembersOf"
// +kubebuilder:validation:XValidation:rule="!has(self.source.http) || (has(self.mode) && self.mode == 'Full')",message="an http source keeps no earlier version to compare a revision with, so Delta cannot read its base: set mode: Full (each revision is uploaded whole), or follow an S3 key or prefix",fieldPath=".mode"
// +kubebuilder:validation:XValidation:rule="!has(self.file.filename) || self.file.filename.size() <= 119",message="file.filename is the stem of each revision's filenames, which get a 9-character revision suffix: at most 119 characters",fieldPath=".file.filename"
type UserPackageSyncSpec struct {
	// Interval is how often the source is checked for a new revision, as
	// Flux writes durations (30m, 1h, 24h). At least 1m.
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="interval must be at least 1m: the source is checked that often"
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// Suspend stops checking the source and creating children; a child in
	// flight carries on.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// Source is the export to follow.
	Source SyncSource `json:"source"`

	// File describes each revision's file to WeChat Pay, as an upload's
	// spec.file. Its filename, if set, is the stem of each revision's
	// filenames (vip.csv: vip-<revision>.csv); default: the sync's name.
	File FileSpec `json:"file"`

	// CredentialsRef names the Secret, in the same namespace, that holds
	// the brand's WeChat Pay credentials. Exactly one of credentialsRef and
	// brandRef is set.
	// +optional
	CredentialsRef *SecretReference `json:"credentialsRef,omitempty"`

	// BrandRef names a platform-owned WeChatPayBrand whose
	// allowedNamespaces include this namespace.
	// +optional
	BrandRef *BrandReference `json:"brandRef,omitempty"`

	// UserPackageID is the crowd package (20 digits) each revision expands.
	// +kubebuilder:validation:Pattern=`^[0-9]{20}$`
	UserPackageID string `json:"userPackageID"`

	// Mode is Delta (each revision uploads only the members the last synced
	// revision lacks; the first uploads all) or Full (every revision is
	// uploaded whole).
	// +kubebuilder:default=Delta
	// +optional
	Mode SyncMode `json:"mode,omitempty"`

	// ShrinkGuard stops a revision that looks broken.
	// +optional
	ShrinkGuard ShrinkGuard `json:"shrinkGuard,omitempty"`

	// HistoryLimit is how many children (and history entries) are kept;
	// older finished children are deleted, oldest first.
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	HistoryLimit int32 `json:"historyLimit,omitempty"`
}

// SyncSource is where the revisions of an export are: exactly one of s3
// or http.
// +kubebuilder:validation:XValidation:rule="(has(self.s3) ? 1 : 0) + (has(self.http) ? 1 : 0) == 1",message="exactly one of s3 or http must be set"
type SyncSource struct {
	// S3 is the bucket, as an upload's spec.source.s3, with exactly one of
	// key (each new version of that object is a revision) or prefix (the
	// newest object under it is the current revision).
	// +optional
	S3 *SyncS3Source `json:"s3,omitempty"`

	// HTTP is a file served over HTTPS, as an upload's spec.source.http:
	// each new strong ETag (or, without one, Last-Modified) is a revision.
	// A server keeps no earlier version to compare with, so it needs
	// mode: Full.
	// +optional
	HTTP *HTTPSource `json:"http,omitempty"`
}

// SyncS3Source is an S3 object whose versions are the revisions, or an S3
// prefix whose newest object is.
// +kubebuilder:validation:XValidation:rule="has(self.key) != has(self.prefix)",message="exactly one of key (follow the versions of one object) or prefix (follow the newest object under it) must be set"
type SyncS3Source struct {
	S3Source `json:",inline"`

	// Prefix follows the newest object under it: the one modified last
	// (of two modified in the same second, the greater key), among keys
	// that end in .csv. A key ending in / is a folder.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Prefix string `json:"prefix,omitempty"`
}

// SyncMode is what a revision uploads.
// +kubebuilder:validation:Enum=Delta;Full
type SyncMode string

// Sync modes.
const (
	SyncModeDelta SyncMode = "Delta"
	SyncModeFull  SyncMode = "Full"
)

// ShrinkGuard holds back a revision that drops too many members.
type ShrinkGuard struct {
	// MaxDropPercent: a revision with fewer lines than this share of the
	// last synced revision's (a truncated or empty export) is not synced
	// until a requested reconcile approves it or a new revision arrives.
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	MaxDropPercent *int32 `json:"maxDropPercent,omitempty"`
}

// UserPackageSyncStatus is what the sync has done.
type UserPackageSyncStatus struct {
	// ObservedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, Reconciling and Stalled (kstatus).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// LastSyncedRevision is the last revision whose child expanded the
	// package: the base of the next Delta.
	// +optional
	LastSyncedRevision *SyncedRevision `json:"lastSyncedRevision,omitempty"`

	// CurrentRevision is the revision the source held at the last check.
	// A check that finds the same revision writes nothing: the source is
	// checked every spec.interval, at the sync's own second of it (from its
	// UID; kubectl crowdpack status sync/NAME shows when), and at once when
	// a reconcile is requested or the spec changes.
	// +optional
	CurrentRevision *Revision `json:"currentRevision,omitempty"`

	// History lists the runs, newest first, at most spec.historyLimit.
	// +optional
	History []SyncRun `json:"history,omitempty"`

	// LastHandledReconcileAt is the reconcile.fluxcd.io/requestedAt value
	// last handled; a requested reconcile approves a held-back shrink.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// Revision is one version of the export.
type Revision struct {
	// ID names the revision: the object's version id in a versioned
	// bucket, else its ETag; with a prefix, the key first.
	ID string `json:"id"`
	// Key is the object's key.
	Key string `json:"key"`
	// VersionID is the object's version in a versioned bucket.
	// +optional
	VersionID string `json:"versionID,omitempty"`
	// ETag of the object.
	// +optional
	ETag string `json:"etag,omitempty"`
	// Size in bytes.
	// +optional
	Size int64 `json:"size,omitempty"`
	// LastModified is when the object was written.
	// +optional
	LastModified *metav1.Time `json:"lastModified,omitempty"`
}

// SyncedRevision is a revision whose child expanded the package.
type SyncedRevision struct {
	Revision `json:",inline"`
	// Digest is sha256:<hex> of the revision's file.
	Digest string `json:"digest"`
	// Members counts the revision's lines (its members, as uploaded whole).
	Members int64 `json:"members"`
	// Child is the UserPackageUpload that synced it.
	Child string `json:"child"`
	// At is when it was synced.
	At metav1.Time `json:"at"`
}

// SyncRun is one revision's run.
type SyncRun struct {
	// Revision is the revision's id.
	Revision string `json:"revision"`
	// Key is the revision's object key.
	Key string `json:"key"`
	// Child is the UserPackageUpload of the run, if it has one.
	// +optional
	Child string `json:"child,omitempty"`
	// Result is InFlight, Synced, Unchanged (the bytes of the last synced
	// revision: no child, no call), HeldBack or Failed.
	Result SyncResult `json:"result"`
	// Reason is why a run is held back or failed, as a condition reason
	// (the child's stall reason, e.g. BaseUnavailable).
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message says why a run is held back or failed.
	// +optional
	Message string `json:"message,omitempty"`
	// Members counts the revision's lines.
	// +optional
	Members int64 `json:"members,omitempty"`
	// Added counts the members sent: not in the base (all, without one).
	// +optional
	Added int64 `json:"added,omitempty"`
	// Unchanged counts the members the base already had.
	// +optional
	Unchanged int64 `json:"unchanged,omitempty"`
	// Left counts the base's members the revision no longer has: WeChat
	// Pay's crowd package keeps them.
	// +optional
	Left int64 `json:"left,omitempty"`
	// InvalidLines counts lines that are no member.
	// +optional
	InvalidLines int64 `json:"invalidLines,omitempty"`
	// At is when the run started.
	At metav1.Time `json:"at"`
}

// SyncResult is how a run ended.
type SyncResult string

// Run results.
const (
	SyncResultInFlight  SyncResult = "InFlight"
	SyncResultSynced    SyncResult = "Synced"
	SyncResultUnchanged SyncResult = "Unchanged"
	SyncResultHeldBack  SyncResult = "HeldBack"
	SyncResultFailed    SyncResult = "Failed"
)

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=upsync,categories=crowdpack
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Last synced",type=string,JSONPath=`.status.lastSyncedRevision.key`
// +kubebuilder:printcolumn:name="Added",type=integer,JSONPath=`.status.history[0].added`
// +kubebuilder:printcolumn:name="Left",type=integer,JSONPath=`.status.history[0].left`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1

// UserPackageSync keeps a crowd package in step with an export that a CRM
// recomputes: every interval it checks the source, and each new revision
// becomes one child UserPackageUpload that expands the package, in Delta
// mode with only the members the last synced revision lacked.
type UserPackageSync struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   UserPackageSyncSpec   `json:"spec,omitempty"`
	Status UserPackageSyncStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// UserPackageSyncList is a list of UserPackageSyncs.
type UserPackageSyncList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []UserPackageSync `json:"items"`
}

// CheckInterval is spec.interval: 1h when absent, never under a minute.
func (s *UserPackageSyncSpec) CheckInterval() time.Duration {
	if s.Interval == nil {
		return time.Hour
	}
	return max(s.Interval.Duration, time.Minute)
}

func init() {
	SchemeBuilder.Register(&UserPackageSync{}, &UserPackageSyncList{})
}
