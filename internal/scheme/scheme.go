// Package scheme builds the runtime scheme the manager and the tests share:
// the built-in Kubernetes types and the crowdpack API.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

// New returns a scheme that knows the built-in types and the crowdpack API.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := upv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}
