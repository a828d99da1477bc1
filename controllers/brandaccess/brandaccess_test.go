package brandaccess

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

func TestBrandAllows(t *testing.T) {
	selector := func(s *metav1.LabelSelector) *upv1.WeChatPayBrand {
		return &upv1.WeChatPayBrand{Spec: upv1.WeChatPayBrandSpec{AllowedNamespaces: upv1.AllowedNamespaces{From: upv1.NamespacesFromSelector, Selector: s}}}
	}
	acme := &metav1.LabelSelector{MatchLabels: map[string]string{"crowdpack.io/brand": "acme"}}
	tests := []struct {
		name      string
		brand     *upv1.WeChatPayBrand
		labels    map[string]string
		want      bool
		wantWords string
	}{
		{"from All allows a namespace without labels",
			&upv1.WeChatPayBrand{Spec: upv1.WeChatPayBrandSpec{AllowedNamespaces: upv1.AllowedNamespaces{From: upv1.NamespacesFromAll}}}, nil, true, "all namespaces"},
		{"the default (Selector without a selector) allows nothing", selector(nil), map[string]string{"crowdpack.io/brand": "acme"}, false,
			"no namespace (allowedNamespaces has no selector)"},
		{"a brand left empty allows nothing, as the API's default", &upv1.WeChatPayBrand{}, map[string]string{"a": "b"}, false,
			"no namespace (allowedNamespaces has no selector)"},
		{"a matching label is allowed", selector(acme), map[string]string{"crowdpack.io/brand": "acme", "team": "x"}, true,
			"namespaces labelled crowdpack.io/brand=acme"},
		{"another brand's label is not", selector(acme), map[string]string{"crowdpack.io/brand": "other"}, false,
			"namespaces labelled crowdpack.io/brand=acme"},
		{"an empty selector matches every namespace", selector(&metav1.LabelSelector{}), nil, true, "all namespaces (an empty selector)"},
		{"an expression selector is honoured", selector(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"gold", "silver"}}}}),
			map[string]string{"tier": "silver"}, true, "namespaces labelled tier in (gold,silver)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Allows(tt.brand, tt.labels)
			if err != nil || got != tt.want {
				t.Errorf("brandAllows = %v, %v; want %v", got, err, tt.want)
			}
			if words := DescribeAllowed(tt.brand); words != tt.wantWords {
				t.Errorf("describeAllowed = %q, want %q", words, tt.wantWords)
			}
		})
	}
}

func TestAnInvalidSelectorIsAnError(t *testing.T) {
	b := &upv1.WeChatPayBrand{Spec: upv1.WeChatPayBrandSpec{AllowedNamespaces: upv1.AllowedNamespaces{
		Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: "Near"}}}}}}
	if _, err := Allows(b, nil); err == nil {
		t.Error("a selector with an unknown operator allowed or refused without an error")
	}
}
