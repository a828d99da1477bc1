// Package conditions holds the condition helpers every reconciler shares:
// one place decides how a condition is stamped with its generation and how
// long its message may be.
package conditions

import (
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowdpack/crowdpack/internal/bound"
)

// New is one condition of an object's generation, its message cut to what
// a condition may hold.
func New(generation int64, typ string, status metav1.ConditionStatus, reason, message string) metav1.Condition {
	return metav1.Condition{
		Type:               typ,
		Status:             status,
		Reason:             reason,
		Message:            bound.Text(message, bound.Condition),
		ObservedGeneration: generation,
	}
}

// Set sets one condition in conditions for the object's generation.
func Set(conditions *[]metav1.Condition, generation int64, typ string, status metav1.ConditionStatus, reason, message string) {
	apimeta.SetStatusCondition(conditions, New(generation, typ, status, reason, message))
}
