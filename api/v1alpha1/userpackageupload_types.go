package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// UserPackageUploadSpec says which file to take into WeChat Pay and how.
// +kubebuilder:validation:XValidation:rule="has(self.file.filename) || (has(self.source.s3) && has(self.source.s3.key) && self.source.s3.key.matches('(^|/)[A-Za-z0-9_.-]{1,124}[.]csv$')) || (has(self.source.http) && self.source.http.url.matches('/[A-Za-z0-9_.-]{1,124}[.]csv([?#].*)?$'))",message="file.filename is required when the base name of the source key or URL is not a valid file name (letters, digits, _ . - only, ending in .csv, at most 128 characters)",fieldPath=".file.filename"
// +kubebuilder:validation:XValidation:rule="!has(self.userPackageID) || !has(self.uploadParts) || self.uploadParts",message="userPackageID needs uploadParts: true (the crowd package is expanded after the parts are merged)",fieldPath=".userPackageID"
// +kubebuilder:validation:XValidation:rule="has(self.brandRef) != has(self.credentialsRef)",message="exactly one of brandRef (a platform-owned WeChatPayBrand) or credentialsRef (a Secret of this namespace) must be set"
type UserPackageUploadSpec struct {
	// Source is where the CSV file is read from.
	Source Source `json:"source"`

	// File describes the file to WeChat Pay.
	File FileSpec `json:"file"`

	// CredentialsRef names the Secret, in the same namespace, that holds the
	// brand's WeChat Pay credentials: brand_id, certificate_serial_no,
	// apiclient_key.pem, wechatpay_public_key_id and wxp_pub.pem.
	// Exactly one of credentialsRef and brandRef is set.
	// +optional
	CredentialsRef *SecretReference `json:"credentialsRef,omitempty"`

	// BrandRef names a platform-owned, cluster-scoped WeChatPayBrand whose
	// allowedNamespaces include this namespace: the brand's keys then stay
	// in the operator's namespace. Exactly one of brandRef and
	// credentialsRef is set.
	// +optional
	BrandRef *BrandReference `json:"brandRef,omitempty"`

	// Validation says what invalid lines do: Report only reports them in
	// status; Strict stops before the upload is initiated.
	// +kubebuilder:default=Report
	// +optional
	Validation ValidationMode `json:"validation,omitempty"`

	// UploadParts sends the parts and merges them after initiate. Set it to
	// false when another system sends the parts: Ready then means initiated.
	// +kubebuilder:default=true
	// +optional
	UploadParts *bool `json:"uploadParts,omitempty"`

	// UserPackageID is the crowd package (20 digits, given by WeChat Pay
	// operations) to expand with the merged file. Empty: no expansion.
	// +kubebuilder:validation:Pattern=`^[0-9]{20}$`
	// +optional
	UserPackageID string `json:"userPackageID,omitempty"`

	// Suspend stops all work on this object until it is set back to false.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// Source is exactly one place a file can be read from.
// +kubebuilder:validation:XValidation:rule="(has(self.s3) ? 1 : 0) + (has(self.http) ? 1 : 0) == 1",message="exactly one of s3 or http must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.s3) || has(self.s3.key)",message="s3.key is required: the object key of the CSV file",fieldPath=".s3.key"
type Source struct {
	// S3 reads from AWS S3 or any S3-compatible store (MinIO, Tencent COS,
	// Aliyun OSS, ...).
	// +optional
	S3 *S3Source `json:"s3,omitempty"`

	// HTTP reads from an HTTPS URL.
	// +optional
	HTTP *HTTPSource `json:"http,omitempty"`
}

// S3Source is an object in an S3-compatible bucket.
type S3Source struct {
	// Endpoint is host[:port] of the storage service, without a scheme,
	// e.g. s3.amazonaws.com or cos.ap-shanghai.myqcloud.com.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$`
	Endpoint string `json:"endpoint"`

	// Bucket follows S3 bucket naming rules: 3 to 63 lower-case letters,
	// digits, dots and hyphens, starting and ending with a letter or digit.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9.-]*[a-z0-9]$`
	// +kubebuilder:validation:XValidation:rule="!self.contains('..')",message="bucket must not contain two adjacent dots"
	Bucket string `json:"bucket"`

	// Key is the object key of the CSV file. Required, but in a
	// UserPackageSync that follows a prefix instead.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Key string `json:"key,omitempty"`

	// Region of the bucket; empty lets the client discover it.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Region string `json:"region,omitempty"`

	// BucketLookup is how the bucket is addressed: auto, path
	// (endpoint/bucket) or dns (bucket.endpoint, needed by Aliyun OSS and
	// Tencent COS).
	// +kubebuilder:default=auto
	// +optional
	BucketLookup BucketLookup `json:"bucketLookup,omitempty"`

	// Insecure uses plain HTTP, for in-cluster MinIO.
	// +optional
	Insecure bool `json:"insecure,omitempty"`

	// SecretRef names a Secret with the keys accesskey, secretkey and,
	// optionally, sessiontoken. Without it the object is read anonymously,
	// unless provider is aws.
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`

	// Provider aws reads with the operator's own environment and workload
	// identity (IRSA) when there is no secretRef. The manager must also run
	// with --allow-ambient-credentials: both the object and the platform
	// ask for it. Empty or generic: a secretRef, or anonymous.
	// +optional
	Provider S3Provider `json:"provider,omitempty"`

	// CertSecretRef names a Secret whose ca.crt is trusted for the endpoint.
	// +optional
	CertSecretRef *SecretReference `json:"certSecretRef,omitempty"`
}

// HTTPSource is a file served over HTTP(S).
// +kubebuilder:validation:XValidation:rule="self.url.startsWith('https://') || (self.url.startsWith('http://') && has(self.insecure) && self.insecure)",message="url must start with https:// (http:// only with insecure: true)",fieldPath=".url"
type HTTPSource struct {
	// URL of the file.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self)",message="url must be a valid absolute URL"
	URL string `json:"url"`

	// Insecure allows a plain http:// URL.
	// +optional
	Insecure bool `json:"insecure,omitempty"`

	// SecretRef names a Secret with either a bearer token (key token) or
	// basic-auth credentials (keys username and password).
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`

	// CertSecretRef names a Secret whose ca.crt is trusted for the URL.
	// +optional
	CertSecretRef *SecretReference `json:"certSecretRef,omitempty"`
}

// S3Provider says where credentials without a secretRef come from.
// +kubebuilder:validation:Enum=generic;aws
type S3Provider string

const (
	// S3ProviderGeneric: a secretRef's keys, or anonymous.
	S3ProviderGeneric S3Provider = "generic"
	// S3ProviderAWS: without a secretRef, the operator's environment and
	// workload identity (opt-in, see --allow-ambient-credentials).
	S3ProviderAWS S3Provider = "aws"
)

// BrandReference names a cluster-scoped WeChatPayBrand.
type BrandReference struct {
	// Name of the WeChatPayBrand.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// SecretReference names a Secret in the object's own namespace.
type SecretReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// FileSpec describes the file to WeChat Pay.
// +kubebuilder:validation:XValidation:rule="!has(self.hashing) || self.hashing != 'MD5' || self.dataType == 'Phone'",message="hashing: MD5 turns raw mobile numbers into MD5 lines, so it needs dataType: Phone; set dataType: Phone or hashing: None",fieldPath=".hashing"
type FileSpec struct {
	// Filename WeChat Pay records for the file; it must be unique among the
	// uploads of a crowd package. Default: the base name of the source key
	// or URL path.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_.-]+\.csv$`
	// +optional
	Filename string `json:"filename,omitempty"`

	// PackageType is Exposure (a targeted-exposure package) or Risk (a
	// risk-user package).
	PackageType PackageType `json:"packageType"`

	// DataType is Phone (one MD5-hashed mobile number per line) or OpenID
	// (one openid per line, of an appid bound to the brand).
	DataType DataType `json:"dataType"`

	// Description of the package: 15 to 128 characters, without emoji or
	// other 4-byte UTF-8 characters.
	// +kubebuilder:validation:MinLength=15
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="!self.matches('[\\\\x{10000}-\\\\x{10FFFF}]')",message="description must not contain emoji or other 4-byte UTF-8 characters"
	Description string `json:"description"`

	// MaxLinesPerUpload cuts a file with more non-empty lines into
	// consecutive uploads of at most this many lines, at line boundaries:
	// WeChat Pay recommends at most 500,000 lines per file. 0 never splits.
	// +kubebuilder:default=500000
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:XValidation:rule="self == 0 || self >= 1000",message="maxLinesPerUpload must be at least 1000, or 0 to never split the file"
	// +optional
	MaxLinesPerUpload *int32 `json:"maxLinesPerUpload,omitempty"`

	// SkipHeaderRow leaves the first line of the file out of every upload;
	// line counts, splitting and digests start at the second line. Without
	// it a header row is reported as an invalid line.
	// +optional
	SkipHeaderRow bool `json:"skipHeaderRow,omitempty"`

	// Hashing transforms each line before it is uploaded. MD5 (only with
	// dataType: Phone) reads raw mobile numbers such as "+86 138-0013-8000"
	// and uploads the lowercase hex MD5 of their 11 digits, computed in the
	// cluster; lines that are no mobile number are reported and left out.
	// +kubebuilder:default=None
	// +optional
	Hashing Hashing `json:"hashing,omitempty"`

	// ExcludeMembersOf uploads only the members of the file that this base
	// file does not have, e.g. this export minus the one uploaded before
	// (WeChat Pay's expand only adds members). Both files are read with
	// this spec's dataType, hashing and skipHeaderRow, and a member is
	// compared as WeChat Pay receives it. The base is pinned: if it cannot
	// be read with its digest, the upload stalls BaseUnavailable rather
	// than upload the whole file.
	// +optional
	ExcludeMembersOf *PinnedSource `json:"excludeMembersOf,omitempty"`
}

// PinnedSource is one version of a file: where it is, as a source, and
// the digest of its bytes. Source's own rule (exactly one of s3 or http)
// comes with it.
// +kubebuilder:validation:XValidation:rule="!has(self.versionID) || has(self.s3)",message="versionID pins a version of an S3 object; it needs s3",fieldPath=".versionID"
type PinnedSource struct {
	Source `json:",inline"`

	// Digest is sha256:<64 lowercase hex> of the file's bytes, as an
	// earlier upload of it records in status.source.digest.
	// +kubebuilder:validation:Pattern=`^sha256:[0-9a-f]{64}$`
	Digest string `json:"digest"`

	// VersionID reads this version of the S3 object (a versioned bucket
	// keeps it after the key is overwritten), as an earlier upload of it
	// records in status.source.versionID. Without it the current object
	// is read, which must still have the digest.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	VersionID string `json:"versionID,omitempty"`
}

// Hashing is the transform applied to each line before it is uploaded.
// +kubebuilder:validation:Enum=None;MD5
type Hashing string

const (
	// HashingNone uploads the lines as they are.
	HashingNone Hashing = "None"
	// HashingMD5 uploads the MD5 of the raw mobile number on each line.
	HashingMD5 Hashing = "MD5"
)

// PackageType is the kind of crowd package.
// +kubebuilder:validation:Enum=Exposure;Risk
type PackageType string

const (
	PackageTypeExposure PackageType = "Exposure"
	PackageTypeRisk     PackageType = "Risk"
)

// DataType is what one line of the file holds.
// +kubebuilder:validation:Enum=Phone;OpenID
type DataType string

const (
	DataTypePhone  DataType = "Phone"
	DataTypeOpenID DataType = "OpenID"
)

// ValidationMode says what invalid lines do.
// +kubebuilder:validation:Enum=Report;Strict
type ValidationMode string

const (
	ValidationReport ValidationMode = "Report"
	ValidationStrict ValidationMode = "Strict"
)

// BucketLookup is how an S3 bucket is addressed.
// +kubebuilder:validation:Enum=auto;path;dns
type BucketLookup string

const (
	BucketLookupAuto BucketLookup = "auto"
	BucketLookupPath BucketLookup = "path"
	BucketLookupDNS  BucketLookup = "dns"
)

// UserPackageUploadStatus is what the operator observed and did.
type UserPackageUploadStatus struct {
	// ObservedGeneration is the generation last brought to Ready or Stalled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, Reconciling and Stalled (kstatus) and the domain
	// conditions SourceVerified, Initiated, PartsUploaded, Merged, Expanded.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Source is the version of the file that was read.
	// +optional
	Source *SourceStatus `json:"source,omitempty"`

	// Content is what the line checks found (never the data itself).
	// +optional
	Content *ContentStatus `json:"content,omitempty"`

	// Delta is what spec.file.excludeMembersOf did: the base read and how
	// the file's members compare with its members (counts only).
	// +optional
	Delta *DeltaStatus `json:"delta,omitempty"`

	// Upload is deprecated: the previous release's one upload session. An
	// object that still has it is migrated on its first reconcile into
	// uploads (one chunk), with no call and no new read, and it is cleared.
	// +optional
	Upload *UploadStatus `json:"upload,omitempty"`

	// Uploads are the WeChat Pay upload sessions of the file, one per chunk
	// (spec.file.maxLinesPerUpload), in order.
	// +listType=map
	// +listMapKey=index
	// +optional
	Uploads []UploadStatus `json:"uploads,omitempty"`

	// Summary totals the uploads, for kubectl and dashboards.
	// +optional
	Summary *UploadSummary `json:"summary,omitempty"`

	// History lists earlier upload sessions abandoned because the file or
	// what WeChat Pay is told about it changed, newest first (at most 10).
	// +optional
	History []AbandonedUpload `json:"history,omitempty"`

	// LastHandledReconcileAt echoes the reconcile.fluxcd.io/requestedAt
	// annotation last handled.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// SourceStatus pins the version of the file that was read.
type SourceStatus struct {
	// Size in bytes.
	Size int64 `json:"size"`
	// Digest is sha256:<64 lowercase hex> of the whole file.
	Digest string `json:"digest"`
	// ETag of the version read.
	// +optional
	ETag string `json:"etag,omitempty"`
	// VersionID of the version read, on versioned buckets.
	// +optional
	VersionID string `json:"versionID,omitempty"`
	// LastModified pins an HTTP file served without an ETag.
	// +optional
	LastModified *metav1.Time `json:"lastModified,omitempty"`
	// Generation of the spec when the file was read.
	Generation int64 `json:"generation"`
	// Fingerprint identifies what was read (spec.source and spec.file.dataType):
	// the file is read again only when it changes or a reconcile is requested.
	// +optional
	Fingerprint string `json:"fingerprint,omitempty"`
}

// ContentStatus reports the line checks against spec.file.dataType.
type ContentStatus struct {
	// Lines is the number of non-empty lines.
	Lines int64 `json:"lines"`
	// InvalidLines is the number of lines that are not a valid value of the
	// data type; WeChat Pay silently drops them.
	InvalidLines int64 `json:"invalidLines"`
	// EmptyLines is the number of empty lines.
	// +optional
	EmptyLines int64 `json:"emptyLines,omitempty"`
	// HeaderRow is true when the first line looks like a header; the file
	// must not have one.
	// +optional
	HeaderRow bool `json:"headerRow,omitempty"`
	// CRLF is true when lines end in \r\n.
	// +optional
	CRLF bool `json:"crlf,omitempty"`
	// BOM is true when the file starts with a UTF-8 byte order mark.
	// +optional
	BOM bool `json:"bom,omitempty"`
	// InvalidLineNumbers are the numbers of the first invalid lines (at
	// most 5); their content is personal data and is never shown.
	// +optional
	InvalidLineNumbers []int64 `json:"invalidLineNumbers,omitempty"`
}

// DeltaStatus is the comparison of the file with the base of
// spec.file.excludeMembersOf. The uploads send the added lines.
type DeltaStatus struct {
	// Base is the version of the base that was read.
	Base PinnedVersion `json:"base"`
	// Size is the length of what is uploaded: the added lines, one MD5 or
	// openid a line, all uploads together.
	Size int64 `json:"size"`
	// Added counts the file's lines whose member the base does not have:
	// the lines uploaded.
	Added int64 `json:"added"`
	// Unchanged counts the file's lines whose member the base has.
	Unchanged int64 `json:"unchanged"`
	// Left counts the distinct members of the base that the file does not
	// have. WeChat Pay cannot remove them from a crowd package.
	Left int64 `json:"left"`
	// BaseMembers counts the distinct members of the base.
	BaseMembers int64 `json:"baseMembers"`
}

// PinnedVersion is one version of a file that was read.
type PinnedVersion struct {
	// Size in bytes.
	Size int64 `json:"size"`
	// Digest is sha256:<64 lowercase hex> of the file.
	Digest string `json:"digest"`
	// ETag of the version read.
	// +optional
	ETag string `json:"etag,omitempty"`
	// VersionID of the version read, on versioned buckets.
	// +optional
	VersionID string `json:"versionID,omitempty"`
	// LastModified pins an HTTP file served without an ETag.
	// +optional
	LastModified *metav1.Time `json:"lastModified,omitempty"`
}

// UploadSummary totals the uploads of a file.
type UploadSummary struct {
	// Uploads is the number of uploads (chunks) the file is cut into.
	Uploads int32 `json:"uploads"`
	// Merged counts the uploads whose parts are merged.
	Merged int32 `json:"merged"`
	// Expanded counts the uploads the crowd package was expanded with.
	Expanded int32 `json:"expanded"`
	// Parts and PartsDone count the parts of all uploads, and those
	// WeChat Pay acknowledged.
	Parts     int64 `json:"parts"`
	PartsDone int64 `json:"partsDone"`
	// Lines and Size count the lines and bytes uploaded, all uploads together.
	Lines int64 `json:"lines"`
	Size  int64 `json:"size"`
	// UploadsProgress is finished/total uploads, e.g. 3/7: finished is
	// expanded when spec.userPackageID is set, merged when the parts are
	// sent, initiated otherwise.
	// +optional
	UploadsProgress string `json:"uploadsProgress,omitempty"`
	// PartsProgress is done/total parts over all uploads.
	// +optional
	PartsProgress string `json:"partsProgress,omitempty"`
}

// UploadStatus is one WeChat Pay upload session: one chunk of the file.
type UploadStatus struct {
	// Index numbers the chunk from 1, as its filename does.
	// +kubebuilder:default=1
	// +optional
	Index int32 `json:"index,omitempty"`
	// FirstLine and LastLine are the chunk's first and last lines in the
	// source file, numbered from 1.
	// +optional
	FirstLine int64 `json:"firstLine,omitempty"`
	// +optional
	LastLine int64 `json:"lastLine,omitempty"`
	// Start and End are the chunk's byte range [start, end) in the source file.
	// +optional
	Start int64 `json:"start,omitempty"`
	// +optional
	End int64 `json:"end,omitempty"`
	// Lines counts the lines uploaded.
	// +optional
	Lines int64 `json:"lines,omitempty"`
	// Size counts the bytes uploaded (hashed, with spec.file.hashing MD5).
	// +optional
	Size int64 `json:"size,omitempty"`

	// Key identifies what this session uploads: the file version read
	// (digest, size), the initiate fields (filename asked for, packageType,
	// dataType, description) and the brand. A new session starts only when
	// it changes; any other edit continues this one.
	// +optional
	Key string `json:"key,omitempty"`
	// Generation of the spec when this session started; a merged upload of
	// a file in several uploads leaves it out, to keep status small.
	// +optional
	Generation int64 `json:"generation,omitempty"`
	// Digest is sha256:<hex> of the uploaded bytes.
	Digest string `json:"digest"`
	// Filename sent to WeChat Pay.
	Filename string `json:"filename"`

	// InitiatingSince is set, before initiate is called, until its answer
	// is recorded. Found set with no ID, the outcome of a call is unknown.
	// +optional
	InitiatingSince *metav1.Time `json:"initiatingSince,omitempty"`
	// UnknownOutcomes counts initiate calls whose answer was lost (each one
	// may have left an orphan session at WeChat Pay, which is harmless).
	// +optional
	UnknownOutcomes int32 `json:"unknownOutcomes,omitempty"`

	// ID is WeChat Pay's upload_id.
	// +optional
	ID string `json:"id,omitempty"`
	// PartSize is file_part_size: the size of every part but the last.
	// +optional
	PartSize int64 `json:"partSize,omitempty"`
	// PartCount is file_part_count.
	// +optional
	PartCount int64 `json:"partCount,omitempty"`
	// ReturnMessage is initiate's return_message.
	// +optional
	ReturnMessage string `json:"returnMessage,omitempty"`
	// InitiatedAt is when initiate answered.
	// +optional
	InitiatedAt *metav1.Time `json:"initiatedAt,omitempty"`

	// PartsDone counts the parts WeChat Pay acknowledged.
	// +optional
	PartsDone int64 `json:"partsDone,omitempty"`
	// BytesDone counts the bytes of the acknowledged parts.
	// +optional
	BytesDone int64 `json:"bytesDone,omitempty"`
	// PartsAcked is a bitmap of acknowledged parts (bit i-1 for part i),
	// base64-encoded: 10,000 parts take 1.7 KB. Dropped once every part
	// is acknowledged (partsDone == partCount).
	// +optional
	PartsAcked string `json:"partsAcked,omitempty"`
	// Progress is PartsDone/PartCount, for kubectl.
	// +optional
	Progress string `json:"progress,omitempty"`

	// MergingSince is set, before merge is called, until its outcome is recorded.
	// +optional
	MergingSince *metav1.Time `json:"mergingSince,omitempty"`
	// MergeUnknownOutcomes counts merge calls whose answer was lost.
	// +optional
	MergeUnknownOutcomes int32 `json:"mergeUnknownOutcomes,omitempty"`
	// ResourceID is the ID merge returned for the merged file; empty when
	// merge's answer was lost and its retry was refused as already merged.
	// +optional
	ResourceID string `json:"resourceID,omitempty"`
	// MergedAt is when merge succeeded.
	// +optional
	MergedAt *metav1.Time `json:"mergedAt,omitempty"`

	// Expanding names the crowd package an expand call was made for, set
	// before the call until its outcome is recorded.
	// +optional
	Expanding *PendingExpand `json:"expanding,omitempty"`
	// ExpandUnknownOutcomes counts expand calls whose answer was lost.
	// +optional
	ExpandUnknownOutcomes int32 `json:"expandUnknownOutcomes,omitempty"`
	// Expanded lists the crowd packages expanded with this upload: each at
	// most once, whatever spec.userPackageID says later.
	// +optional
	Expanded []ExpandedPackage `json:"expanded,omitempty"`
	// ExpandedAt is when the crowd package was last expanded with this upload.
	// +optional
	ExpandedAt *metav1.Time `json:"expandedAt,omitempty"`
}

// PendingExpand is an expand call whose outcome is not recorded yet.
type PendingExpand struct {
	UserPackageID string      `json:"userPackageID"`
	Since         metav1.Time `json:"since"`
}

// ExpandedPackage is a crowd package expanded with an upload.
type ExpandedPackage struct {
	UserPackageID string      `json:"userPackageID"`
	At            metav1.Time `json:"at"`
}

// AbandonedUpload is an upload session left behind by a change, or the
// filename of an initiate call whose answer was lost.
type AbandonedUpload struct {
	// ID of the session; empty when initiate's answer was lost.
	ID         string `json:"id"`
	Generation int64  `json:"generation"`
	Digest     string `json:"digest"`
	// Filename the upload used; WeChat Pay does not take it twice.
	Filename string      `json:"filename"`
	At       metav1.Time `json:"at"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=upu,categories=crowdpack
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Uploads",type=string,JSONPath=`.status.summary.uploadsProgress`
// +kubebuilder:printcolumn:name="Parts",type=string,JSONPath=`.status.summary.partsProgress`
// +kubebuilder:printcolumn:name="Brand",type=string,JSONPath=`.spec.brandRef.name`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Digest",type=string,JSONPath=`.status.source.digest`,priority=1
// +kubebuilder:printcolumn:name="Size",type=integer,JSONPath=`.status.source.size`,priority=1

// UserPackageUpload takes one crowd-package CSV file from object storage into
// WeChat Pay: initiate, upload the parts, merge and, optionally, expand a
// crowd package.
type UserPackageUpload struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   UserPackageUploadSpec   `json:"spec,omitempty"`
	Status UserPackageUploadStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// UserPackageUploadList is a list of UserPackageUploads.
type UserPackageUploadList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []UserPackageUpload `json:"items"`
}

func init() {
	SchemeBuilder.Register(&UserPackageUpload{}, &UserPackageUploadList{})
}
