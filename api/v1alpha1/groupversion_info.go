// Package v1alpha1 holds the wechatpay.crowdpack.io/v1alpha1 API: the
// UserPackageUpload resource that takes a crowd-package file from object
// storage into WeChat Pay's brand marketing API.
// +kubebuilder:object:generate=true
// +groupName=wechatpay.crowdpack.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "wechatpay.crowdpack.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this API with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this API to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
