package manifests

import (
	"context"
	"slices"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestNetworkPolicyComponentFencesTheManager renders config/default with
// the config/network-policy component, as a user's overlay would, has the
// API server accept it, and checks what it lets through.
func TestNetworkPolicyComponentFencesTheManager(t *testing.T) {
	var policy *networkingv1.NetworkPolicy
	for _, u := range render(t, "test/manifests/testdata/network-policy") {
		if u.GetKind() == "Namespace" {
			ensureNamespace(t, u.GetName(), u.GetLabels())
		}
		if u.GetKind() != "NetworkPolicy" {
			continue
		}
		if err := dryRunApply(u); err != nil {
			t.Fatalf("dry-run apply %s: %v", describe(u), err)
		}
		policy = &networkingv1.NetworkPolicy{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, policy); err != nil {
			t.Fatal(err)
		}
	}
	if policy == nil {
		t.Fatal("the overlay renders no NetworkPolicy")
	}
	deployment := managerDeployment(t)
	for k, v := range policy.Spec.PodSelector.MatchLabels {
		if deployment.Spec.Template.Labels[k] != v {
			t.Errorf("the policy selects %s=%s, which the manager's pods do not carry", k, v)
		}
	}
	var ingressPorts, egressPorts []int32
	for _, rule := range policy.Spec.Ingress {
		for _, p := range rule.Ports {
			ingressPorts = append(ingressPorts, p.Port.IntVal)
		}
	}
	excepted := map[string]bool{}
	for _, rule := range policy.Spec.Egress {
		for _, p := range rule.Ports {
			egressPorts = append(egressPorts, p.Port.IntVal)
		}
		for _, peer := range rule.To {
			if peer.IPBlock == nil {
				continue
			}
			for _, e := range peer.IPBlock.Except {
				excepted[e] = true
			}
		}
	}
	slices.Sort(ingressPorts)
	if !slices.Equal(ingressPorts, []int32{8081, 8443}) {
		t.Errorf("ingress ports %v, want only metrics 8443 and probes 8081", ingressPorts)
	}
	for _, port := range []int32{53, 443, 6443} {
		if !slices.Contains(egressPorts, port) {
			t.Errorf("egress does not allow port %d", port)
		}
	}
	for _, cidr := range []string{"169.254.0.0/16", "100.100.100.200/32"} {
		if !excepted[cidr] {
			t.Errorf("egress does not except the metadata network %s", cidr)
		}
	}
}

// TestMetricsAreReadOnlyWithTheReaderRole checks the RBAC of the secure
// metrics endpoint: the manager may review tokens and access, and the
// crowdpack-metrics-reader ClusterRole grants GET /metrics.
func TestMetricsAreReadOnlyWithTheReaderRole(t *testing.T) {
	objs := render(t, "config/default")
	var reader bool
	for _, u := range objs {
		switch u.GetKind() {
		case "Namespace":
			ensureNamespace(t, u.GetName(), u.GetLabels())
		}
	}
	for _, u := range objs {
		switch u.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding":
			reader = reader || u.GetName() == "crowdpack-metrics-reader"
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()), client.FieldOwner(fieldOwner), client.ForceOwnership)
			cancel()
			if err != nil {
				t.Fatalf("apply %s: %v", describe(u), err)
			}
		}
	}
	if !reader {
		t.Fatal("config/default renders no ClusterRole crowdpack-metrics-reader")
	}
	const sa = "system:serviceaccount:" + managerNamespace + ":crowdpack-controller-manager"
	for _, attrs := range []authorizationv1.ResourceAttributes{
		{Verb: "create", Group: "authentication.k8s.io", Resource: "tokenreviews"},
		{Verb: "create", Group: "authorization.k8s.io", Resource: "subjectaccessreviews"},
	} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: sa, Groups: []string{"system:serviceaccounts", "system:authenticated"}, ResourceAttributes: &attrs,
		}}
		if err := c.Create(context.Background(), sar); err != nil {
			t.Fatal(err)
		}
		if !sar.Status.Allowed {
			t.Errorf("the manager may not create %s, which the secure metrics endpoint needs", attrs.Resource)
		}
	}
}
