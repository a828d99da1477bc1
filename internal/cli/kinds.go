package cli

import (
	"fmt"
	"strings"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

// kind is one of crowdpack's kinds as the plugin knows it. Adding a kind
// (UserPackageSync, on its way) is one entry here plus its table and status
// printers.
type kind struct {
	// Kind and Resource are the API's names; Short is the short name.
	Kind, Resource, Short string
	// Aliases are the words a user may type for it.
	Aliases []string
	// Namespaced is false for cluster-scoped kinds.
	Namespaced bool
}

var (
	uploadKind = kind{Kind: "UserPackageUpload", Resource: "userpackageuploads", Short: "upu",
		Aliases: []string{"uploads", "upload", "upu", "userpackageupload", "userpackageuploads"}, Namespaced: true}
	// syncKind is not served by this release of the operator: get and
	// status say so (by discovery) until it is.
	syncKind = kind{Kind: "UserPackageSync", Resource: "userpackagesyncs", Short: "upsync",
		Aliases: []string{"syncs", "sync", "upsync", "userpackagesync", "userpackagesyncs"}, Namespaced: true}
	brandKind = kind{Kind: "WeChatPayBrand", Resource: "wechatpaybrands", Short: "wxbrand",
		Aliases: []string{"brands", "brand", "wxbrand", "wechatpaybrand", "wechatpaybrands"}}

	kinds = []kind{uploadKind, syncKind, brandKind}
)

// kindFor finds the kind a user named.
func kindFor(word string) (kind, error) {
	w := strings.ToLower(word)
	for _, k := range kinds {
		for _, a := range k.Aliases {
			if a == w || a+"."+upv1.GroupVersion.Group == w {
				return k, nil
			}
		}
	}
	return kind{}, fmt.Errorf("unknown kind %q: use uploads, syncs or brands", word)
}

// notInstalledError says a kind is not served by the cluster.
func notInstalledError(k kind) error {
	return fmt.Errorf("the %s kind (%s, short name %s) is not installed in this cluster: the API server does not serve %s in %s; "+
		"install a crowdpack release that has it (kubectl crowdpack check lists the CRDs)",
		k.Kind, k.Resource, k.Short, k.Resource, upv1.GroupVersion)
}

// requireServed fails with notInstalledError when k is not served.
func (c *clients) requireServed(k kind) error {
	ok, err := c.served(k.Resource)
	if err != nil {
		return err
	}
	if !ok {
		return notInstalledError(k)
	}
	return nil
}
