package managercache

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// countingMapper maps UserPackageUpload in v1alpha1 only, and counts the
// questions it is asked.
type countingMapper struct {
	meta.RESTMapper
	asked int
}

var uploadGK = schema.GroupKind{Group: "wechatpay.crowdpack.io", Kind: "UserPackageUpload"}

func (c *countingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	c.asked++
	if gk != uploadGK || (len(versions) > 0 && versions[0] != "v1alpha1") {
		return nil, &meta.NoKindMatchError{GroupKind: gk, SearchedVersions: versions}
	}
	return &meta.RESTMapping{
		Resource:         schema.GroupVersionResource{Group: gk.Group, Version: "v1alpha1", Resource: "userpackageuploads"},
		GroupVersionKind: gk.WithVersion("v1alpha1"),
		Scope:            meta.RESTScopeNamespace,
	}, nil
}

func TestRememberingMapper(t *testing.T) {
	tests := []struct {
		name      string
		gk        schema.GroupKind
		versions  []string
		wantAsked int
		wantErr   bool
	}{
		{name: "a kind in one version is looked up once", gk: uploadGK, versions: []string{"v1alpha1"}, wantAsked: 1},
		{name: "a kind the API server does not serve is asked about every time", gk: schema.GroupKind{Kind: "Nothing"}, versions: []string{"v1"}, wantAsked: 2, wantErr: true},
		{name: "the preferred version is asked about every time", gk: uploadGK, wantAsked: 2},
		{name: "several versions are asked about every time", gk: uploadGK, versions: []string{"v1alpha1", "v1"}, wantAsked: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counting := &countingMapper{}
			m := &rememberingMapper{RESTMapper: counting}
			for range 2 {
				mapping, err := m.RESTMapping(tt.gk, tt.versions...)
				if gotErr := err != nil; gotErr != tt.wantErr {
					t.Fatalf("RESTMapping error %v, want an error: %v", err, tt.wantErr)
				}
				if err == nil && mapping.Scope.Name() != meta.RESTScopeNameNamespace {
					t.Errorf("scope %q, want namespace", mapping.Scope.Name())
				}
				if err != nil && !meta.IsNoMatchError(err) {
					t.Errorf("error %v, want the wrapped mapper's no-match error", err)
				}
			}
			if counting.asked != tt.wantAsked {
				t.Errorf("the wrapped mapper was asked %d times, want %d", counting.asked, tt.wantAsked)
			}
		})
	}
}

func TestARememberedMappingIsTheCallersOwn(t *testing.T) {
	m := &rememberingMapper{RESTMapper: &countingMapper{}}
	first, err := m.RESTMapping(uploadGK, "v1alpha1")
	if err != nil {
		t.Fatal(err)
	}
	first.Resource.Resource = "changed"
	second, err := m.RESTMapping(uploadGK, "v1alpha1")
	if err != nil {
		t.Fatal(err)
	}
	if second.Resource.Resource != "userpackageuploads" {
		t.Errorf("a caller's change reached the next caller: resource %q", second.Resource.Resource)
	}
}
