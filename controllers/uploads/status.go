package uploads

import (
	"github.com/crowdpack/crowdpack/controllers/classify"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/conditions"
)

// Status setters: pure functions of the object, table-tested without a
// cluster (the Cluster API style). The reconciler decides what happened;
// these decide what it looks like to kstatus, kubectl wait and Argo CD.

// setCondition sets one condition for the object's current generation.
func setCondition(u *upv1.UserPackageUpload, typ string, status metav1.ConditionStatus, reason, message string) {
	apimeta.SetStatusCondition(&u.Status.Conditions, conditions.New(u.Generation, typ, status, reason, message))
}

// wantsParts reports whether the spec asks for the parts to be sent (and
// so merged and expanded); when not, the condition typ does not apply.
func wantsParts(u *upv1.UserPackageUpload, typ string) bool {
	if !u.Spec.WantsParts() {
		removeCondition(u, typ)
		return false
	}
	return true
}

func removeCondition(u *upv1.UserPackageUpload, typ string) {
	apimeta.RemoveStatusCondition(&u.Status.Conditions, typ)
}

// isNewGeneration reports whether no reconcile has yet said anything about
// the object's current generation.
func isNewGeneration(u *upv1.UserPackageUpload) bool {
	ready := apimeta.FindStatusCondition(u.Status.Conditions, upv1.ConditionReady)
	return ready == nil || ready.ObservedGeneration != u.Generation
}

// isWaitingForSlot reports whether the object's last word was that it waits
// for a read slot: when its turn comes, its first word is written again,
// and with it initiate's mark (once.Ledger).
func isWaitingForSlot(u *upv1.UserPackageUpload) bool {
	ready := apimeta.FindStatusCondition(u.Status.Conditions, upv1.ConditionReady)
	return ready != nil && ready.Reason == upv1.ReasonProgressing && ready.Message == waitingForSlotMessage
}

// markProgressing says work on the current generation is under way. Used
// first thing for a new generation, before any slow I/O.
func markProgressing(u *upv1.UserPackageUpload, message string) {
	setCondition(u, upv1.ConditionReconciling, metav1.ConditionTrue, upv1.ReasonProgressing, message)
	setCondition(u, upv1.ConditionReady, metav1.ConditionUnknown, upv1.ReasonProgressing, message)
	removeCondition(u, upv1.ConditionStalled)
}

// markRetrying says a transient error interrupted the work and that it is
// retried with backoff; reason names the error.
func markRetrying(u *upv1.UserPackageUpload, reason, message string) {
	setCondition(u, upv1.ConditionReconciling, metav1.ConditionTrue, upv1.ReasonRetrying, message)
	setCondition(u, upv1.ConditionReady, metav1.ConditionFalse, reason, message)
	removeCondition(u, upv1.ConditionStalled)
}

// markStalled says the work cannot go on until a human changes something.
// The generation counts as observed: kstatus then reports Failed.
func markStalled(u *upv1.UserPackageUpload, reason, message string) {
	setCondition(u, upv1.ConditionStalled, metav1.ConditionTrue, reason, message)
	setCondition(u, upv1.ConditionReady, metav1.ConditionFalse, reason, message)
	removeCondition(u, upv1.ConditionReconciling)
	u.Status.ObservedGeneration = u.Generation
}

// markReady says everything the spec asks for is done.
func markReady(u *upv1.UserPackageUpload) {
	setCondition(u, upv1.ConditionReady, metav1.ConditionTrue, upv1.ReasonSucceeded, readyMessage(u))
	removeCondition(u, upv1.ConditionReconciling)
	removeCondition(u, upv1.ConditionStalled)
	u.Status.ObservedGeneration = u.Generation
}

// markSuspended says no work is done while spec.suspend is true. Setting
// it is a spec change, so even a finished object shows it: its new
// generation is not reconciled. Reconciling stays True, so that kstatus
// never calls a suspended object Current (one created suspended has no
// status.observedGeneration to tell it otherwise).
func markSuspended(u *upv1.UserPackageUpload) {
	const message = "reconciliation is suspended; set spec.suspend to false to resume"
	setCondition(u, upv1.ConditionReconciling, metav1.ConditionTrue, upv1.ReasonSuspended, message)
	setCondition(u, upv1.ConditionReady, metav1.ConditionFalse, upv1.ReasonSuspended, message)
	removeCondition(u, upv1.ConditionStalled)
}

// failCondition sets a domain condition False with the error's reason.
func failCondition(u *upv1.UserPackageUpload, condition string, err error) error {
	setCondition(u, condition, metav1.ConditionFalse, classify.Reason(err, upv1.ReasonProgressing), err.Error())
	return err
}
