package managercache

import (
	"fmt"
	"net/http"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// NewRESTMapper is the manager's REST mapper: controller-runtime's dynamic
// one, with the mappings of one kind in one version remembered. With
// --watch-namespaces every read from the cache asks whether its kind is
// namespaced, and the dynamic mapper answers by asking every API group it
// knows, making an error for each that lacks the kind: a sixth of the
// bytes the manager allocated in the load test. A kind's scope and its
// resource name in a version do not change while the version is served.
func NewRESTMapper(cfg *rest.Config, httpClient *http.Client) (meta.RESTMapper, error) {
	m, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("REST mapper: %w", err)
	}
	return &rememberingMapper{RESTMapper: m}, nil
}

// rememberingMapper remembers the mappings found for one kind in one
// version; every other question goes to the mapper it wraps.
type rememberingMapper struct {
	meta.RESTMapper
	mappings sync.Map // schema.GroupVersionKind → meta.RESTMapping
}

func (m *rememberingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	if len(versions) != 1 || versions[0] == "" {
		return m.RESTMapper.RESTMapping(gk, versions...) // the preferred version may change
	}
	gvk := gk.WithVersion(versions[0])
	if found, ok := m.mappings.Load(gvk); ok {
		mapping := found.(meta.RESTMapping) // a copy: callers may change theirs
		return &mapping, nil
	}
	mapping, err := m.RESTMapper.RESTMapping(gk, versions...)
	if err == nil {
		m.mappings.Store(gvk, *mapping)
	}
	return mapping, err
}
