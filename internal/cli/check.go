package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

// managerSelector selects the manager's Deployment, installed by
// config/default or the Helm chart (both label it so).
var managerSelector = labels.SelectorFromSet(labels.Set{
	"app.kubernetes.io/name": "crowdpack",
	"control-plane":          "controller-manager",
})

type checkOptions struct {
	*options
	managerNamespace string
}

func newCheckCommand(o *options) *cobra.Command {
	ch := &checkOptions{options: o}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check the installation: CRDs, the manager, its brand Secrets namespace, your RBAC",
		Long: `check tells whether crowdpack is installed and usable from here:
  - the CRDs are installed, established, and serve and store ` + upv1.GroupVersion.Version + `
    (UserPackageSync is optional until a release ships it);
  - the manager's Deployment (labels app.kubernetes.io/name=crowdpack,
    control-plane=controller-manager) has a ready replica;
  - the namespace its WeChatPayBrand Secrets are read from (--brand-secret-namespace,
    or the manager's own) exists;
  - you may create UserPackageUploads in the namespace (-n), asked of the API server
    with a SelfSubjectAccessReview, and which other verbs you have.
It exits 1 when a required check fails.`,
		Example: `  kubectl crowdpack check
  kubectl crowdpack check -n marketing --manager-namespace crowdpack-system`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return ch.run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&ch.managerNamespace, "manager-namespace", "", "Namespace of the manager's Deployment (default: look in every namespace).")
	return cmd
}

// checker prints the checks' outcomes and remembers failures.
type checker struct {
	w      io.Writer
	failed []string
}

func (c *checker) ok(format string, args ...any)   { fmt.Fprintf(c.w, "  ok    "+format+"\n", args...) }
func (c *checker) info(format string, args ...any) { fmt.Fprintf(c.w, "  --    "+format+"\n", args...) }
func (c *checker) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(c.w, "  FAIL  %s\n", msg)
	c.failed = append(c.failed, msg)
}

func (ch *checkOptions) run(ctx context.Context) error {
	cl, err := ch.connect()
	if err != nil {
		return err
	}
	c := &checker{w: ch.streams.Out}
	fmt.Fprintln(c.w, "CRDs:")
	for _, k := range kinds {
		checkCRD(ctx, cl, c, k, k.Kind != syncKind.Kind)
	}
	fmt.Fprintln(c.w, "Manager:")
	if d := checkManager(ctx, cl, c, ch.managerNamespace); d != nil {
		checkBrandNamespace(ctx, cl, c, d)
	}
	fmt.Fprintf(c.w, "RBAC of the current user in namespace %s:\n", cl.namespace)
	checkRBAC(ctx, cl, c)
	if len(c.failed) > 0 {
		fmt.Fprintf(c.w, "%d check(s) failed\n", len(c.failed))
		return &ExitError{Code: 1, Err: errors.New(strings.Join(c.failed, "; ")), Silent: true}
	}
	fmt.Fprintln(c.w, "all checks passed")
	return nil
}

func checkCRD(ctx context.Context, cl *clients, c *checker, k kind, required bool) {
	crd := &apiextensionsv1.CustomResourceDefinition{}
	name := k.Resource + "." + upv1.GroupVersion.Group
	err := cl.client.Get(ctx, client.ObjectKey{Name: name}, crd)
	switch {
	case apierrors.IsNotFound(err) && !required:
		c.info("%s: not installed (optional: this release's operator has no %s)", name, k.Kind)
		return
	case apierrors.IsNotFound(err):
		c.fail("%s: not installed; install the CRDs (kubectl apply --server-side -f crds.yaml, or the chart)", name)
		return
	case apierrors.IsForbidden(err):
		// Not allowed to read CRDs: discovery still tells whether it is served.
		if ok, derr := cl.served(k.Resource); derr == nil && ok {
			c.ok("%s: served at %s (not allowed to read the CRD itself)", name, upv1.GroupVersion)
		} else if required {
			c.fail("%s: not served at %s", name, upv1.GroupVersion)
		} else {
			c.info("%s: not served (optional)", name)
		}
		return
	case err != nil:
		c.fail("%s: %v", name, err)
		return
	}
	established := false
	for _, cond := range crd.Status.Conditions {
		if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
			established = true
		}
	}
	var served, storage bool
	var versions []string
	for _, v := range crd.Spec.Versions {
		versions = append(versions, v.Name)
		if v.Name == upv1.GroupVersion.Version {
			served, storage = v.Served, v.Storage
		}
	}
	switch {
	case !established:
		c.fail("%s: not established yet", name)
	case !served:
		c.fail("%s: does not serve %s (versions %s); upgrade the CRDs to this plugin's release", name, upv1.GroupVersion.Version, strings.Join(versions, ", "))
	case !storage:
		c.fail("%s: serves %s but stores another version (versions %s); this plugin expects %s as the storage version", name, upv1.GroupVersion.Version, strings.Join(versions, ", "), upv1.GroupVersion.Version)
	default:
		c.ok("%s: established, %s served and stored", name, upv1.GroupVersion.Version)
	}
}

// checkManager finds the manager's Deployment and checks it has a ready
// replica; it returns the Deployment, or nil.
func checkManager(ctx context.Context, cl *clients, c *checker, namespace string) *appsv1.Deployment {
	var list appsv1.DeploymentList
	opts := []client.ListOption{client.MatchingLabelsSelector{Selector: managerSelector}}
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
	}
	err := cl.client.List(ctx, &list, opts...)
	if apierrors.IsForbidden(err) {
		c.info("not allowed to list Deployments%s: cannot tell whether the manager runs (try --manager-namespace)", inNamespace(namespace))
		return nil
	}
	if err != nil {
		c.fail("list Deployments: %v", err)
		return nil
	}
	if len(list.Items) == 0 {
		c.fail("no manager Deployment (labels %s)%s: install crowdpack (install.yaml or the chart)", managerSelector, inNamespace(namespace))
		return nil
	}
	var running *appsv1.Deployment
	for i := range list.Items {
		d := &list.Items[i]
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		image := ""
		if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
			image = cs[0].Image
		}
		if d.Status.ReadyReplicas > 0 {
			c.ok("Deployment %s/%s: %d/%d ready (%s)", d.Namespace, d.Name, d.Status.ReadyReplicas, want, image)
			if running == nil {
				running = d
			}
		} else {
			c.fail("Deployment %s/%s: 0/%d ready (%s): kubectl -n %s describe deploy %s", d.Namespace, d.Name, want, image, d.Namespace, d.Name)
		}
	}
	if running == nil {
		return &list.Items[0]
	}
	return running
}

func inNamespace(ns string) string {
	if ns == "" {
		return ""
	}
	return " in namespace " + ns
}

// brandSecretNamespace is where the manager reads WeChatPayBrand Secrets:
// --brand-secret-namespace, or POD_NAMESPACE (its own namespace).
func brandSecretNamespace(d *appsv1.Deployment) string {
	for _, ctr := range d.Spec.Template.Spec.Containers {
		args := append(append([]string{}, ctr.Command...), ctr.Args...)
		for i, a := range args {
			if v, ok := strings.CutPrefix(a, "--brand-secret-namespace="); ok {
				return v
			}
			if a == "--brand-secret-namespace" && i+1 < len(args) {
				return args[i+1]
			}
		}
		for _, e := range ctr.Env {
			if e.Name != "POD_NAMESPACE" {
				continue
			}
			if e.Value != "" {
				return e.Value
			}
			if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace" {
				return d.Namespace
			}
		}
	}
	return ""
}

func checkBrandNamespace(ctx context.Context, cl *clients, c *checker, d *appsv1.Deployment) {
	ns := brandSecretNamespace(d)
	if ns == "" {
		c.info("brand Secrets namespace: none set (--brand-secret-namespace, POD_NAMESPACE): WeChatPayBrands cannot be used")
		return
	}
	err := cl.client.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{})
	switch {
	case err == nil:
		c.ok("brand Secrets namespace: %s (WeChatPayBrand credentials Secrets go there)", ns)
	case apierrors.IsNotFound(err):
		c.fail("brand Secrets namespace %s does not exist", ns)
	case apierrors.IsForbidden(err):
		c.ok("brand Secrets namespace: %s (not allowed to read the namespace itself)", ns)
	default:
		c.fail("brand Secrets namespace %s: %v", ns, err)
	}
}

// checkRBAC asks the API server what the current user may do with uploads
// in the namespace; create is required.
func checkRBAC(ctx context.Context, cl *clients, c *checker) {
	for _, verb := range []string{"create", "get", "list", "watch", "patch", "delete"} {
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: cl.namespace, Verb: verb, Group: upv1.GroupVersion.Group, Resource: uploadKind.Resource,
			},
		}}
		if err := cl.client.Create(ctx, review); err != nil {
			c.fail("SelfSubjectAccessReview %s userpackageuploads: %v", verb, err)
			return
		}
		switch {
		case review.Status.Allowed:
			c.ok("%s userpackageuploads", verb)
		case verb == "create":
			c.fail("create userpackageuploads: denied%s; ask for the crowdpack-edit role in %s", reason(review), cl.namespace)
		default:
			c.info("%s userpackageuploads: denied%s", verb, reason(review))
		}
	}
}

func reason(r *authorizationv1.SelfSubjectAccessReview) string {
	if r.Status.Reason == "" {
		return ""
	}
	return " (" + r.Status.Reason + ")"
}
