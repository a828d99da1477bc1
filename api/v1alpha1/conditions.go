package v1alpha1

// Condition types. Ready, Reconciling and Stalled follow kstatus, so that
// kubectl wait, Flux and Argo CD read progress without knowing this API.
const (
	ConditionReady       = "Ready"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"

	ConditionSourceVerified = "SourceVerified"
	ConditionInitiated      = "Initiated"
	ConditionPartsUploaded  = "PartsUploaded"
	ConditionMerged         = "Merged"
	ConditionExpanded       = "Expanded"
)

// ReconcileRequestAnnotation asks for a reconcile now; its value is echoed
// in status.lastHandledReconcileAt (the Flux convention).
const ReconcileRequestAnnotation = "reconcile.fluxcd.io/requestedAt"

// WantsParts reports whether the operator sends the parts itself.
func (s *UserPackageUploadSpec) WantsParts() bool {
	return s.UploadParts == nil || *s.UploadParts
}

// Condition reasons. A stalled object's Stalled and Ready conditions carry
// the same reason, so `kubectl get upu` and `kubectl wait` both name it.
const (
	// ReasonProgressing: work is under way.
	ReasonProgressing = "Progressing"
	// ReasonRetrying (Reconciling): a transient error; retried with backoff.
	ReasonRetrying = "Retrying"
	// ReasonSuspended: spec.suspend is true.
	ReasonSuspended = "Suspended"
	// ReasonSucceeded (Ready): everything asked for is done.
	ReasonSucceeded = "Succeeded"

	// Domain conditions that are true.
	ReasonDigested      = "Digested"
	ReasonInitiated     = "Initiated"
	ReasonPartsUploaded = "PartsUploaded"
	ReasonMerged        = "Merged"
	ReasonExpanded      = "Expanded"

	// Stalled: a human must change the spec, a Secret or the file.
	ReasonSecretNotFound      = "SecretNotFound"
	ReasonInvalidCredentials  = "InvalidCredentials"
	ReasonInvalidSpec         = "InvalidSpec"
	ReasonSourceNotFound      = "SourceNotFound"
	ReasonSourceAccessDenied  = "SourceAccessDenied"
	ReasonSourceChanged       = "SourceChanged"
	ReasonInvalidLines        = "InvalidLines"
	ReasonFilenameTaken       = "FilenameTaken"
	ReasonWeChatPayRejected   = "WeChatPayRejected"
	ReasonWeChatPayAuthFailed = "WeChatPayAuthFailed"
	ReasonResponseUnverified  = "ResponseUnverified"
	// ReasonSourceAddressDenied: the source's host (or a redirect from it)
	// resolves to a network the platform denies (--source-denied-cidrs).
	ReasonSourceAddressDenied = "SourceAddressDenied"
	// ReasonInsecureSourceDenied: plain HTTP without the platform's
	// --allow-insecure-sources, or a redirect from https to http.
	ReasonInsecureSourceDenied = "InsecureSourceDenied"
	// ReasonSourceTooLarge: the object is larger than --max-file-size.
	ReasonSourceTooLarge = "SourceTooLarge"
	// ReasonBaseUnavailable: the base of spec.file.excludeMembersOf cannot
	// be read as it was pinned (gone, overwritten, another digest) or holds
	// no member of the data type; the upload never falls back to the whole
	// file by itself.
	ReasonBaseUnavailable = "BaseUnavailable"
	// ReasonInvalidPlan: the part plan in status cannot describe the file
	// (an edited status); it is never acted upon.
	ReasonInvalidPlan = "InvalidPlan"

	// ReasonTooManyLines (a Warning event): a file that is never split
	// (spec.file.maxLinesPerUpload: 0) has more lines than WeChat Pay
	// recommends for one upload.
	ReasonTooManyLines = "TooManyLines"

	// Retried with backoff (Reconciling=True, reason Retrying).
	ReasonSourceUnavailable = "SourceUnavailable"
	// ReasonSourceTooSlow: a read idled (--source-idle-timeout) or dripped
	// below --source-min-rate.
	ReasonSourceTooSlow        = "SourceTooSlow"
	ReasonWeChatPayUnavailable = "WeChatPayUnavailable"
	ReasonWeChatPayRateLimited = "WeChatPayRateLimited"
	ReasonOutcomeUnknown       = "OutcomeUnknown"
	// ReasonAPIServerUnavailable: a Secret could not be read, or progress
	// could not be written, because the Kubernetes API server failed.
	ReasonAPIServerUnavailable = "APIServerUnavailable"
	// ReasonWaitingForPackage: another object's expand of the same crowd
	// package is under way; expands of one package take turns.
	ReasonWaitingForPackage = "WaitingForPackage"
)

// Stalls of multi-team clusters: a tenant reaches only what the platform
// lends it.
const (
	// ReasonBrandNotFound: spec.brandRef names no WeChatPayBrand.
	ReasonBrandNotFound = "BrandNotFound"
	// ReasonBrandNotAllowed: the WeChatPayBrand's allowedNamespaces do not
	// include the object's namespace.
	ReasonBrandNotAllowed = "BrandNotAllowed"
	// ReasonAmbientCredentialsDenied: spec.source.s3.provider aws asks for
	// the operator's own identity, which the manager does not lend
	// (--allow-ambient-credentials is off).
	ReasonAmbientCredentialsDenied = "AmbientCredentialsDenied"
)
