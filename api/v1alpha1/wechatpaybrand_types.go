package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WeChatPayBrandSpec names a brand's credentials, kept in the operator's
// namespace, and the namespaces whose UserPackageUploads may use them.
type WeChatPayBrandSpec struct {
	// CredentialsSecretRef names the Secret, in the operator's brand-secret
	// namespace (its own namespace, or --brand-secret-namespace), that holds
	// brand_id, certificate_serial_no, apiclient_key.pem,
	// wechatpay_public_key_id and wxp_pub.pem.
	CredentialsSecretRef SecretReference `json:"credentialsSecretRef"`

	// AllowedNamespaces says which namespaces may use this brand. Default:
	// from Selector without a selector, which allows none.
	// +kubebuilder:default={from: Selector}
	// +optional
	AllowedNamespaces AllowedNamespaces `json:"allowedNamespaces,omitempty"`
}

// AllowedNamespaces selects the namespaces that may use a brand, as Gateway
// API's allowedRoutes.namespaces does.
// +kubebuilder:validation:XValidation:rule="self.from != 'All' || !has(self.selector)",message="selector is used only with from: Selector"
type AllowedNamespaces struct {
	// From is All (every namespace) or Selector (the namespaces whose labels
	// match selector; none without a selector).
	// +kubebuilder:default=Selector
	// +optional
	From NamespacesFrom `json:"from,omitempty"`

	// Selector matches the labels of the allowed namespaces (with from:
	// Selector). An empty selector ({}) matches every namespace.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// NamespacesFrom is how allowed namespaces are chosen.
// +kubebuilder:validation:Enum=All;Selector
type NamespacesFrom string

const (
	NamespacesFromAll      NamespacesFrom = "All"
	NamespacesFromSelector NamespacesFrom = "Selector"
)

// WeChatPayBrandStatus is what the operator found in the brand's Secret.
// It never holds key material.
type WeChatPayBrandStatus struct {
	// ObservedGeneration is the generation last brought to Ready or Stalled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, Reconciling and Stalled (kstatus).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// BrandID is brand_id of the Secret.
	// +optional
	BrandID string `json:"brandID,omitempty"`

	// CertificateSerialNo is the serial number of the brand API certificate.
	// +optional
	CertificateSerialNo string `json:"certificateSerialNo,omitempty"`

	// PublicKeyID is the WeChat Pay public key ID answers are verified with.
	// +optional
	PublicKeyID string `json:"publicKeyID,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=wxbrand,categories=crowdpack
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Brand ID",type=string,JSONPath=`.status.brandID`
// +kubebuilder:printcolumn:name="Allowed",type=string,JSONPath=`.spec.allowedNamespaces.from`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Serial",type=string,JSONPath=`.status.certificateSerialNo`,priority=1

// WeChatPayBrand is a platform-owned brand: its credentials stay in the
// operator's namespace, and UserPackageUploads of the namespaces it allows
// use it through spec.brandRef. Cluster-scoped, like cert-manager's
// ClusterIssuer.
type WeChatPayBrand struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   WeChatPayBrandSpec   `json:"spec,omitempty"`
	Status WeChatPayBrandStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// WeChatPayBrandList is a list of WeChatPayBrands.
type WeChatPayBrandList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WeChatPayBrand `json:"items"`
}

func init() {
	SchemeBuilder.Register(&WeChatPayBrand{}, &WeChatPayBrandList{})
}
